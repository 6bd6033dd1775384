"""The embedded amqtt broker, for installs with nothing but pip; it enforces the same password
and ACL files as Mosquitto and re-reads them when they change, so no restart is needed."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from amqtt.session import OutgoingApplicationMessage, Session

from controller.mqtt.broker_access import (
    AccessRules,
    client_id_allowed,
    filter_allows,
    parse_acl,
    parse_password_file,
    verify_password,
)

log = logging.getLogger(__name__)


class _TimeoutsInOneLine(logging.Filter):
    """amqtt logs a client that did not acknowledge a QoS 1 message in time (a slow or gone
    node: the message stays queued for it) as an error with a traceback. That is a fact about
    the client, not a fault of the broker: one line of warning, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeoutError):
            record.msg, record.args = "a client did not acknowledge in time: %s", (exc,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


_ONE_LINE = _TimeoutsInOneLine()


class AccessFiles:
    """The password and ACL files, re-read when their modification time changes."""

    def __init__(self, password_file: Path, acl_file: Path) -> None:
        self.password_file = password_file
        self.acl_file = acl_file
        self._stamp: tuple[float, float] | None = None
        self.users: dict[str, str] = {}
        self.rules = AccessRules()
        # Logins verified against the stored hash they were checked with: a session whose
        # password was replaced (the node provisioned again) is no longer current.
        self._verified: dict[str, tuple[str, str]] = {}

    def _mtimes(self) -> tuple[float, float]:
        try:
            return (self.password_file.stat().st_mtime_ns, self.acl_file.stat().st_mtime_ns)
        except FileNotFoundError:
            return (0.0, 0.0)

    def refresh(self) -> None:
        stamp = self._mtimes()
        if stamp == self._stamp:
            return
        try:
            users = parse_password_file(self.password_file.read_text(encoding="utf-8"))
            rules = parse_acl(self.acl_file.read_text(encoding="utf-8"))
        except OSError as exc:
            log.warning("broker access files unreadable, keeping the previous ones: %s", exc)
            return
        self.users, self.rules, self._stamp = users, rules, stamp
        log.info("broker access: %d users loaded", len(users))

    def authenticate(
        self, username: str | None, password: str | None, client_id: str | None = None
    ) -> bool:
        """The password is right and the client id is one this login may use."""
        self.refresh()
        if not username or password is None or not client_id_allowed(username, client_id):
            return False
        stored = self.users.get(username)
        return stored is not None and verify_password(password, stored)

    def current(self, username: str | None, password: str | None) -> bool:
        """This login still holds: a session opened with a password since replaced has no
        rights left (Mosquitto disconnects it on reload). Verified once per stored hash."""
        self.refresh()
        stored = self.users.get(username or "")
        if stored is None or password is None:
            return False
        if self._verified.get(username or "") == (stored, password):
            return True
        if not verify_password(password, stored):
            return False
        self._verified[username or ""] = (stored, password)
        return True

    def allowed(self, username: str | None, topic: str, action: Action) -> bool:
        self.refresh()
        if not username:
            return False
        table = self.rules.write if action == Action.PUBLISH else self.rules.read
        return any(filter_allows(f, topic) for f in table.get(username, []))


_files: dict[tuple[str, str], AccessFiles] = {}


def _access(password_file: str, acl_file: str) -> AccessFiles:
    key = (password_file, acl_file)
    if key not in _files:
        _files[key] = AccessFiles(Path(password_file), Path(acl_file))
    return _files[key]


@dataclass
class AccessFilesConfig(BasePlugin.Config):
    """Both plugins' configuration (amqtt fills it from `broker_config`'s plugin entries)."""

    password_file: str = ""
    acl_file: str = ""


class RegistryAuthPlugin(BaseAuthPlugin):
    """Password authentication against the generated password file. No anonymous access."""

    Config = AccessFilesConfig

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.files = _access(self.config.password_file, self.config.acl_file)

    async def authenticate(self, *, session: Session) -> bool | None:
        ok = self.files.authenticate(session.username, session.password, session.client_id)
        if not ok:
            log.warning(
                "broker: refused login for %r (client id %r)", session.username, session.client_id
            )
        return ok


class RegistryTopicPlugin(BaseTopicPlugin):
    """Publish, subscribe and receive checks against the generated ACL file."""

    Config = AccessFilesConfig

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.files = _access(self.config.password_file, self.config.acl_file)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        ok = self.files.allowed(session.username, topic, action) and self.files.current(
            session.username, session.password
        )
        if not ok and action != Action.RECEIVE:
            log.warning("broker: %s refused for %r on %s", action, session.username, topic)
        return ok


def broker_config(
    host: str, port: int, password_file: Path, acl_file: str | Path
) -> dict[str, Any]:
    files = {"password_file": str(password_file), "acl_file": str(acl_file)}
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "timeout_disconnect_delay": 0,
        "plugins": {
            f"{__name__}.RegistryAuthPlugin": files,
            f"{__name__}.RegistryTopicPlugin": files,
        },
    }


class _Snapshots(dict[str, list[tuple[Session, int]]]):
    """amqtt 0.12's subscription table (topic filter -> sessions), with two changes.

    Iteration works on a copy: amqtt iterates its subscriptions across awaits, and a client
    subscribing meanwhile raised 'dictionary changed size during iteration', dropping that
    broadcast. And the filters with a wildcard are kept apart (`wildcards`), so that a message
    is matched against those and looked up among the exact ones, not compared with every filter
    of every node (see `_TrackedBroker._run_broadcast`)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.wildcards = {f for f in self if _is_wildcard(f)}

    def items(self) -> list[tuple[str, list[tuple[Session, int]]]]:  # type: ignore[override]  # a copy, not a view, on purpose
        return list(super().items())

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def __setitem__(self, key: str, value: list[tuple[Session, int]]) -> None:
        super().__setitem__(key, value)
        if _is_wildcard(key):
            self.wildcards.add(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.wildcards.discard(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.wildcards.discard(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self.wildcards.clear()

    def matching(self, topic: str, matches: Callable[[str, str], bool]) -> list[str]:
        """The filters a message on `topic` goes to: its exact one, and the wildcards matching."""
        found = [f for f in list(self.wildcards) if matches(topic, f)]
        if dict.__contains__(self, topic) and not _is_wildcard(topic):
            found.append(topic)
        return found


def _is_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


class _TrackedBroker(Broker):
    """amqtt's broker, remembering each client connection so that a stop can end them all
    even when amqtt's own shutdown stalls (it can, with clients publishing during it)."""

    def __init__(self, config: dict[str, Any], files: AccessFiles) -> None:
        super().__init__(config)
        self._subscriptions = _Snapshots(self._subscriptions)
        self.client_writers: set[asyncio.StreamWriter] = set()
        self.files = files

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt 0.12's, with the login checked first. amqtt acts on a CONNECT's client id before
        it authenticates: a clean session deletes the session holding that id (and its
        subscriptions), and the connection holding it is taken over, even when the newcomer's
        login is then refused. So anyone who knew a node's or the controller's client id could
        cut it off. Here the password and the client id (bound to the login) are checked
        before anything else, and a refused CONNECT touches no session."""
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (AMQTTError, MQTTError) as exc:
            log.warning("broker: bad CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            await writer.close()
            raise AMQTTError(exc) from exc
        client_id = session.client_id  # None or empty: refused below
        # amqtt publishes (and retains) a will without any ACL check: a node's login could
        # leave a will on another node's state, or an empty retained one clearing an alert.
        will_refused = bool(session.will_flag) and not self.files.allowed(
            session.username, session.will_topic or "", Action.PUBLISH
        )
        if (
            will_refused
            or client_id is None
            or not self.files.authenticate(session.username, session.password, client_id)
        ):
            log.warning(
                "broker: refused login for %r (client id %r) from %s",
                session.username,
                session.client_id,
                remote_address,
            )
            handler.attach(session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError("login refused")
        # From here on, as amqtt 0.12 does it.
        if session.clean_session:
            await self._delete_session(client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            existing.will_flag = session.will_flag
            existing.will_message = session.will_message
            existing.will_topic = session.will_topic
            existing.will_qos = session.will_qos
            existing.keep_alive = session.keep_alive
            existing.username = session.username
            existing.password = session.password
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        self.client_writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self.client_writers.discard(writer)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        # amqtt 0.12 calls this at connect for every filter any client holds, and never checks
        # the receive ACL here: a node would get other nodes' retained messages. Send only what
        # this session subscribed to and may read.
        topic_filter, qos = subscription
        holders = self._subscriptions.get(topic_filter, [])
        if not any(s is session for s, _ in holders):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
                continue
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(
                        retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                    )
                )
            )
        if tasks:
            await asyncio.wait(tasks)

    async def _run_broadcast(
        self, running_tasks: deque[asyncio.Task[OutgoingApplicationMessage]]
    ) -> None:
        """amqtt 0.12's, taking only the filters that match. amqtt compared each message with
        every filter held (each node holds its own timeline and command topics), and formatted a
        debug line for each that did not match: at 1,000 nodes about 2,000 comparisons for every
        confirmation a node sent. The rest is as amqtt 0.12 does it."""
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        table = self._subscriptions
        assert isinstance(table, _Snapshots)
        for k_filter in table.matching(topic, self._matches):
            for target_session, sub_qos in list(table.get(k_filter, [])):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(
                    target_session, topic=topic, action=Action.RECEIVE
                ):
                    continue
                if (
                    target_session.transitions.state != "connected"
                    and not target_session.clean_session
                    and qos in (1, 2)
                    and not target_session.is_anonymous
                ):
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                if target_session.transitions.state != "connected":
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    task = asyncio.ensure_future(
                        handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)
                    )
                    running_tasks.append(task)

    def abort_clients(self) -> None:
        for writer in list(self.client_writers):
            writer.transport.abort()
        self.client_writers.clear()


class EmbeddedBroker:
    """Starts and stops amqtt inside the controller's event loop."""

    def __init__(self, host: str, port: int, password_file: Path, acl_file: Path) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("embedded broker bound to %s: it is meant for one machine", host)
        self.host, self.port = host, port
        config = broker_config(host, port, password_file, acl_file)
        broker_log = logging.getLogger("amqtt.broker")
        if _ONE_LINE not in broker_log.filters:
            broker_log.addFilter(_ONE_LINE)
        self._broker = _TrackedBroker(config, _access(str(password_file), str(acl_file)))

    async def start(self) -> None:
        await self._broker.start()
        log.info("embedded broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        # Close the listening sockets first, so the port is free and nobody new comes in; then
        # drop the clients' connections, so that amqtt's shutdown, which stops each session in
        # turn, has no client left to wait for (with 20 connected nodes it waited out its
        # timeout); then give that shutdown a bounded time.
        for server in list(self._broker._servers.values()):
            if server.instance is not None:
                server.instance.close()
        self._broker.abort_clients()
        try:
            await asyncio.wait_for(self._broker.shutdown(), timeout=5)
        except (TimeoutError, Exception) as exc:  # shutting down: report, never raise
            log.warning("embedded broker shutdown incomplete: %r", exc)
        self._broker.abort_clients()
