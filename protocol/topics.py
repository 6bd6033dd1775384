"""Topic names of protocol v1 and the parser for everything nodes publish."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from protocol.messages import CommandAck, NodeEvent, NodeState, Telemetry

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_PAYLOAD = 64 * 1024
MAX_EVENTS = 100  # events in one message (docs/protocol.md, "Node events")

ReportKind = Literal["state", "telemetry", "events", "cmd/ack"]
Report = NodeState | Telemetry | NodeEvent | CommandAck


def valid_id(value: str) -> bool:
    """Node and area ids are safe MQTT topic levels: no wildcards, no separators."""
    return bool(_ID.match(value))


class ProtocolError(ValueError):
    """A message that does not follow the protocol. `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Topics:
    """All topic names under one prefix (tests use a unique prefix each)."""

    def __init__(self, prefix: str = "radio") -> None:
        if not prefix or "+" in prefix or "#" in prefix:
            raise ValueError(f"invalid topic prefix {prefix!r}")
        self.prefix = prefix
        self.root = f"{prefix}/v1"

    @property
    def controller_state(self) -> str:
        return f"{self.root}/controller/state"

    @property
    def controller_keys(self) -> str:
        """The retained, root-signed announcement of the signing keys nodes are to trust."""
        return f"{self.root}/controller/keys"

    def node(self, node_id: str, leaf: str) -> str:
        if not valid_id(node_id):
            raise ValueError(f"invalid node id {node_id!r}")
        return f"{self.root}/node/{node_id}/{leaf}"

    def node_state(self, node_id: str) -> str:
        return self.node(node_id, "state")

    def telemetry(self, node_id: str) -> str:
        return self.node(node_id, "telemetry")

    def events(self, node_id: str) -> str:
        return self.node(node_id, "events")

    def timeline(self, node_id: str) -> str:
        return self.node(node_id, "timeline")

    def cmd(self, node_id: str) -> str:
        return self.node(node_id, "cmd")

    def cmd_ack(self, node_id: str) -> str:
        return self.node(node_id, "cmd/ack")

    def area_alert(self, area_id: str) -> str:
        if not valid_id(area_id):
            raise ValueError(f"invalid area id {area_id!r}")
        return f"{self.root}/area/{area_id}/alert"

    def report_filters(self) -> list[str]:
        """What the controller subscribes to: everything nodes publish."""
        return [
            f"{self.root}/node/+/state",
            f"{self.root}/node/+/telemetry",
            f"{self.root}/node/+/events",
            f"{self.root}/node/+/cmd/ack",
        ]

    def split_node_topic(self, topic: str) -> tuple[str, str]:
        """`radio/v1/node/n1/cmd/ack` -> ("n1", "cmd/ack"); ProtocolError if not a node topic."""
        head = f"{self.root}/node/"
        if not topic.startswith(head):
            raise ProtocolError("unknown_topic", topic[:200])
        rest = topic[len(head) :]
        node_id, _, leaf = rest.partition("/")
        if not valid_id(node_id) or not leaf:
            raise ProtocolError("unknown_topic", topic[:200])
        return node_id, leaf


_REPORT_MODELS: dict[str, type[Report]] = {
    "state": NodeState,
    "telemetry": Telemetry,
    "events": NodeEvent,
    "cmd/ack": CommandAck,
}


def parse_node_report(topics: Topics, topic: str, payload: bytes) -> tuple[str, str, Report]:
    """Parse what a node published as one report. Returns (node_id, kind, model) or raises
    ProtocolError (events several to a message: `parse_node_reports`).

    A report must name the node whose topic it came on: the broker's ACL guarantees who may
    publish on a topic, so the topic is the identity and the body must agree with it.
    """
    node_id, leaf, data = _open(topics, topic, payload)
    if not isinstance(data, dict):
        raise ProtocolError("malformed_json", "payload is not a JSON object")
    return node_id, leaf, _validate(leaf, node_id, data)


@dataclass
class NodeReports:
    """One message from a node: the reports in it, in order, and the reason for each of its
    events that was refused (the others are kept)."""

    node_id: str
    kind: str
    reports: list[Report]
    refused: list[ProtocolError] = field(default_factory=list)


def parse_node_reports(topics: Topics, topic: str, payload: bytes) -> NodeReports:
    """Parse what a node published: one report, or on `events` a JSON array of events sent
    together, each validated on its own. ProtocolError when the message as a whole is bad."""
    node_id, leaf, data = _open(topics, topic, payload)
    if not isinstance(data, list) or leaf != "events":
        if not isinstance(data, dict):
            raise ProtocolError("malformed_json", "payload is not a JSON object")
        return NodeReports(node_id, leaf, [_validate(leaf, node_id, data)])
    if not data:
        raise ProtocolError("malformed_json", "an empty list of events")
    if len(data) > MAX_EVENTS:
        raise ProtocolError("too_many_events", f"{len(data)} events, at most {MAX_EVENTS}")
    out = NodeReports(node_id, leaf, [])
    for i, item in enumerate(data):
        try:
            if not isinstance(item, dict):
                raise ProtocolError("malformed_json", "an event is not a JSON object")
            out.reports.append(_validate(leaf, node_id, item))
        except ProtocolError as exc:
            out.refused.append(ProtocolError(exc.reason, f"event {i}: {exc.detail}"[:300]))
    return out


def _open(topics: Topics, topic: str, payload: bytes) -> tuple[str, str, object]:
    node_id, leaf = topics.split_node_topic(topic)
    if leaf not in _REPORT_MODELS:
        raise ProtocolError("unknown_topic", topic[:200])
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("too_large", f"{len(payload)} bytes")
    try:
        return node_id, leaf, json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("malformed_json", str(exc)[:200]) from None


def _validate(leaf: str, node_id: str, data: dict[str, object]) -> Report:
    if data.get("v") not in (None, 1):
        raise ProtocolError("unsupported_version", str(data.get("v"))[:20])
    try:
        report = _REPORT_MODELS[leaf].model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("invalid_fields", _summarise(exc)) from None
    if report.node_id != node_id:
        raise ProtocolError("node_mismatch", f"topic {node_id} body {report.node_id}")
    return report


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:300]
