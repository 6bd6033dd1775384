"""Broker credentials and ACLs, written as Mosquitto password and ACL files.

The same two files serve both brokers: Mosquitto reads them natively (reload with SIGHUP), and
the embedded amqtt broker reads them through `controller.mqtt.embedded_broker`'s plugins, which
re-read them whenever they change. The registry is the source; these files are derived.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from controller.core.private_files import private_dir
from protocol import Topics

PBKDF2_ITERATIONS = 101  # Mosquitto 2's default for its "$7$" PBKDF2-SHA512 hashes


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A Mosquitto-compatible `$7$` hash (PBKDF2-SHA512, 12-byte salt)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def client_id_allowed(username: str | None, client_id: str | None) -> bool:
    """Whether a login may use this MQTT client id: its user name, or the user name followed by
    `:` and anything (the controller's instances, a second connection of a tool). No valid
    node id or generated login contains `:`, so no login can take another's id, and with it
    cut the other off (a broker drops the older of two connections with one id)."""
    if not username or not client_id:
        return False
    return client_id == username or client_id.startswith(f"{username}:")


def client_id_for(username: str | None, instance: str) -> str:
    """The client id a login connects with (see `client_id_allowed`)."""
    return f"{username}:{instance}" if username else instance


def render_mosquitto_conf(directory: Path, port: int = 1883, bind: str | None = None) -> str:
    """The Mosquitto listener the password and ACL files are meant for (docs/operations.md)."""
    directory = directory.resolve()
    listener = f"listener {port}" + (f" {bind}" if bind else "")
    return "\n".join(
        [
            "# Generated from the registry; include it from mosquitto.conf or copy it.",
            listener,
            "allow_anonymous false",
            f"password_file {directory / 'passwd'}",
            f"acl_file {directory / 'acl'}",
            "# A client's id is its login, so no login can take over (and cut off) another's",
            "# connection by connecting with its id.",
            "use_username_as_clientid true",
            "",
        ]
    )


def new_password() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class BrokerUser:
    username: str
    password_hash: str
    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)


def controller_user(username: str, password_hash: str, topics: Topics) -> BrokerUser:
    everything = f"{topics.root}/#"
    return BrokerUser(username, password_hash, read=[everything], write=[everything])


def node_user(node_id: str, password_hash: str, areas: list[str], topics: Topics) -> BrokerUser:
    """A node publishes only under its own id and reads only its own and its areas' topics."""
    return BrokerUser(
        username=node_id,
        password_hash=password_hash,
        write=[
            topics.node_state(node_id),
            topics.telemetry(node_id),
            topics.events(node_id),
            topics.cmd_ack(node_id),
        ],
        read=[
            topics.timeline(node_id),
            topics.cmd(node_id),
            topics.controller_state,
            topics.controller_keys,
            *(topics.area_alert(a) for a in areas),
        ],
    )


def render_password_file(users: list[BrokerUser]) -> str:
    return "".join(f"{u.username}:{u.password_hash}\n" for u in users)


def render_acl_file(users: list[BrokerUser]) -> str:
    lines = ["# Generated from the node registry; edits are overwritten.", ""]
    for u in users:
        lines.append(f"user {u.username}")
        for t in u.write:
            lines.append(f"topic write {t}")
        for t in u.read:
            lines.append(f"topic read {t}")
        lines.append("")
    return "\n".join(lines)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    private_dir(path.parent)
    # A name of its own per call: two threads writing the same file must not share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    # Created with its mode: never readable by others, not even until a chmod.
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.chmod(mode)
    tmp.replace(path)


def write_broker_files(users: list[BrokerUser], directory: Path) -> tuple[Path, Path]:
    """Write `passwd` and `acl` into `directory`; returns their paths."""
    passwd, acl = directory / "passwd", directory / "acl"
    write_atomic(passwd, render_password_file(users))
    write_atomic(acl, render_acl_file(users))
    write_atomic(directory / "mosquitto.conf", render_mosquitto_conf(directory))
    return passwd, acl


@dataclass
class AccessRules:
    """Parsed ACL: per user, the topic filters they may read and write."""

    read: dict[str, list[str]] = field(default_factory=dict)
    write: dict[str, list[str]] = field(default_factory=dict)


def parse_acl(text: str) -> AccessRules:
    """Parse the subset of Mosquitto's ACL syntax that `render_acl_file` writes."""
    rules = AccessRules()
    user: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if parts[0] == "user" and len(parts) == 2:
            user = parts[1]
        elif parts[0] == "topic" and user is not None and len(parts) in (2, 3):
            access, topic = (parts[1], parts[2]) if len(parts) == 3 else ("readwrite", parts[1])
            if access in ("read", "readwrite"):
                rules.read.setdefault(user, []).append(topic)
            if access in ("write", "readwrite"):
                rules.write.setdefault(user, []).append(topic)
    return rules


def parse_password_file(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and ":" in line:
            name, _, hashed = line.partition(":")
            users[name] = hashed
    return users


def filter_allows(allowed: str, requested: str) -> bool:
    """Whether an ACL filter covers a topic or a subscription filter (MQTT matching rules;
    a wildcard in the request is only covered by the same or a wider wildcard)."""
    a_parts, r_parts = allowed.split("/"), requested.split("/")
    for i, a in enumerate(a_parts):
        if a == "#":
            return True
        if i >= len(r_parts):
            return False
        r = r_parts[i]
        if r == "#":
            return False
        if a == "+":
            continue
        if a != r:
            return False
    return len(a_parts) == len(r_parts)
