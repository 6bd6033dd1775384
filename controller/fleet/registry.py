"""The registry of areas and nodes: provisioning, broker credentials, retirement."""

from __future__ import annotations

import json
import logging
import secrets
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlmodel import Session, col, select

from controller.auth.keys import key_serial, media_token, root_keys, trusted_keys
from controller.core.config import Settings
from controller.core.db import Database
from controller.core.models import Area, AreaKind, Node
from controller.mqtt.broker_access import (
    BrokerUser,
    controller_user,
    hash_password,
    new_password,
    node_user,
    verify_password,
    write_atomic,
    write_broker_files,
)
from protocol import Signer, Topics, valid_id
from schedules import AreaTree

log = logging.getLogger(__name__)


# Larger area sets are not put in a query's IN list (SQLite allows some thousands of
# parameters); the nodes are then filtered after reading.
MAX_AREAS_IN_QUERY = 500


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says why."""


@dataclass
class BrokerLogin:
    username: str
    password: str


class Registry:
    def __init__(self, settings: Settings, db: Database, topics: Topics, signer: Signer) -> None:
        self.settings = settings
        self.db = db
        self.topics = topics
        self.signer = signer
        self._broker_files_lock = threading.Lock()

    # --- credentials -------------------------------------------------------------------

    def controller_login(self) -> BrokerLogin:
        """The controller's broker login: from RADIO_MQTT_URL, or generated once for the
        embedded broker. Either way it goes into the generated password and ACL files."""
        if self.settings.mqtt_url:
            u = urlparse(self.settings.mqtt_url)
            if u.username and u.password:
                return BrokerLogin(unquote(u.username), unquote(u.password))
        path = self.settings.secrets_dir / "mqtt-controller.json"
        if path.exists():
            data = json.loads(path.read_text())
            return BrokerLogin(data["username"], data["password"])
        login = BrokerLogin(f"controller-{secrets.token_hex(3)}", new_password())
        write_atomic(path, json.dumps({"username": login.username, "password": login.password}))
        return login

    def broker_users(self, session: Session) -> list[BrokerUser]:
        tree = self.area_tree(session)
        users: list[BrokerUser] = []
        login = self.controller_login()
        users.append(controller_user(login.username, self._controller_hash(login), self.topics))
        nodes = session.exec(select(Node).where(Node.retired == False)).all()  # noqa: E712
        for node in nodes:
            if node.mqtt_password_hash:
                areas = list(tree.lineage(node.area_id))
                users.append(node_user(node.id, node.mqtt_password_hash, areas, self.topics))
        return users

    def _controller_hash(self, login: BrokerLogin) -> str:
        # Hashing is salted; keep one hash so the password file does not change every start.
        path = self.settings.secrets_dir / "mqtt-controller.hash"
        if path.exists():
            stored = path.read_text().strip()
            if verify_password(login.password, stored):
                return stored
        stored = hash_password(login.password)
        write_atomic(path, stored)
        return stored

    def write_broker_files(self) -> tuple[Path, Path]:
        """Regenerate the broker's password and ACL files; tell an external broker to reload.
        One at a time: a write from an older list of users must not land after a newer one."""
        with self._broker_files_lock:
            with self.db.session() as session:
                users = self.broker_users(session)
            paths = write_broker_files(users, self.settings.broker_dir)
        command = self.settings.broker_reload_command
        if command and self.settings.mqtt_url:
            result = subprocess.run(shlex.split(command), capture_output=True, timeout=30)
            if result.returncode != 0:
                log.warning(
                    "broker reload command failed (%d): %s",
                    result.returncode,
                    result.stderr.decode(errors="replace")[-300:],
                )
        return paths

    # --- areas and nodes ----------------------------------------------------------------

    def area_tree(self, session: Session) -> AreaTree:
        rows = session.exec(select(Area.id, Area.parent_id)).all()
        return AreaTree({a: p for a, p in rows})

    def areas_under(self, session: Session, areas: set[str]) -> set[str]:
        """These areas and every area below them."""
        tree = self.area_tree(session)
        return set().union(*(tree.descendants(a) for a in areas)) if areas else set()

    def nodes_under(self, session: Session, areas: set[str], *columns: Any) -> list[Any]:
        """Active nodes in any of these areas or in an area below one of them: whole objects, or
        rows of `columns` (two or more, `Node.area_id` among them), far cheaper for thousands."""
        under = self.areas_under(session, areas)
        query = select(*columns) if columns else select(Node)
        query = query.where(Node.retired == False)  # noqa: E712
        if len(under) <= MAX_AREAS_IN_QUERY:  # a province's thousands: filtered here instead
            query = query.where(col(Node.area_id).in_(under))
        rows = session.exec(query).all()
        return [r for r in rows if r.area_id in under]

    def add_area(
        self, session: Session, area_id: str, name: str, kind: AreaKind, parent_id: str | None
    ) -> Area:
        if not valid_id(area_id):
            raise RegistryError(
                f"area id {area_id!r}: use lowercase letters, digits, '-', '_' or '.' (max 64)"
            )
        if session.get(Area, area_id) is not None:
            raise RegistryError(f"area {area_id!r} already exists")
        if parent_id is not None and session.get(Area, parent_id) is None:
            raise RegistryError(f"parent area {parent_id!r} does not exist")
        area = Area(id=area_id, name=name, kind=kind, parent_id=parent_id)
        session.add(area)
        return area

    def add_node(
        self,
        session: Session,
        node_id: str,
        name: str,
        area_id: str,
        **fields: Any,
    ) -> tuple[Node, dict[str, Any]]:
        """Register a node; returns it and its provisioning (with the only copy of its password
        outside the device's file)."""
        if not valid_id(node_id):
            raise RegistryError(
                f"node id {node_id!r}: use lowercase letters, digits, '-', '_' or '.' (max 64)"
            )
        if session.get(Node, node_id) is not None:
            raise RegistryError(f"node {node_id!r} already exists")
        if node_id == self.controller_login().username:
            raise RegistryError(f"node id {node_id!r} is the controller's broker login")
        if session.get(Area, area_id) is None:
            raise RegistryError(f"area {area_id!r} does not exist")
        password = new_password()
        node = Node(
            id=node_id,
            name=name,
            area_id=area_id,
            mqtt_password_hash=hash_password(password),
            **fields,
        )
        session.add(node)
        session.flush()
        return node, self.provisioning(session, node, password)

    def provisioning(self, session: Session, node: Node, password: str) -> dict[str, Any]:
        """The node's provisioning file. A ConfigError (a ValueError) when the settings would
        give nodes an address they cannot reach or an unreadable CA: nothing is written."""
        tree = self.area_tree(session)
        return {
            "node_id": node.id,
            "mqtt_url": self.settings.node_mqtt_url(),
            "username": node.id,
            "password": password,
            "topic_prefix": self.topics.prefix,
            "areas": list(tree.lineage(node.area_id)),
            "controller_keys": trusted_keys(self.signer),
            "root_keys": root_keys(self.signer),
            "key_serial": key_serial(self.signer),
            "media_token": self.media_token(node),
            "media_token_url": f"{self.settings.node_base_url()}/media/token",
            "firmware": node.firmware or "sim-1.0.0",
            # A whole number when it is one (600, not 600.0): a node may read it as one.
            "heartbeat_s": whole(self.settings.heartbeat_s),
            "keepalive_s": self.settings.node_keepalive_s,
            # The CA itself: the controller's path to it means nothing on a node.
            "ca_pem": self.settings.node_ca_pem(),
        }

    def media_token(self, node: Node) -> str:
        """A fresh media token for an active node (see `controller.auth.keys.media_token`)."""
        expires = int(time.time() + self.settings.media_token_ttl_h * 3600)
        return media_token(self.settings.secret_key, node.id, node.mqtt_password_hash, expires)

    def reprovision(self, session: Session, node: Node) -> dict[str, Any]:
        """A fresh broker password for an existing node (only hashes are kept, so a lost
        provisioning file means a new password); un-retires it. The old password and every
        media token made from it stop working once the broker files are written again."""
        password = new_password()
        node.mqtt_password_hash = hash_password(password)
        if node.retired:
            node.retired = False
            node.status = "unknown"  # until it reports again
        session.add(node)
        return self.provisioning(session, node, password)

    def write_provisioning(self, provisioning: dict[str, Any]) -> Path:
        path = self.settings.provisioning_dir / f"{provisioning['node_id']}.json"
        write_atomic(path, json.dumps(provisioning, indent=2, ensure_ascii=False))
        return path

    def retire_node(self, session: Session, node_id: str) -> Node:
        node = session.get(Node, node_id)
        if node is None:
            raise RegistryError(f"node {node_id!r} does not exist")
        node.retired = True
        node.mqtt_password_hash = ""
        node.status = "retired"
        session.add(node)
        (self.settings.provisioning_dir / f"{node_id}.json").unlink(missing_ok=True)
        return node


def whole(seconds: float) -> float | int:
    """`seconds` as an int when it has no fraction, for files that people and other programs
    read."""
    return int(seconds) if float(seconds).is_integer() else seconds
