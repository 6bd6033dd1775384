"""The wire contract between the controller and loudspeaker nodes (protocol v1).

This package is the only code that the controller and the node software share; the node
software imports nothing else of the controller. Everything here is pure: no broker, no I/O.
"""

from protocol.clock import Clock, ScaledClock, SystemClock
from protocol.keyset import KeyEntry, KeySet, KeySetBody
from protocol.messages import (
    PROTOCOL_VERSION,
    AlertBody,
    CommandAck,
    CommandBody,
    CommandName,
    CommandStage,
    ControllerState,
    EventType,
    FirmwareUpdate,
    MediaRef,
    NodeEvent,
    NodeState,
    NodeStatus,
    Priority,
    StreamFormat,
    StreamRef,
    Telemetry,
    TimelineBody,
    TimelineItem,
)
from protocol.signing import (
    Envelope,
    RejectedMessage,
    Signer,
    Verifier,
    key_id,
    load_private_key,
    load_public_key,
    new_private_key,
    public_key_b64,
)
from protocol.topics import ProtocolError, Topics, parse_node_report, valid_id

__all__ = [
    "PROTOCOL_VERSION",
    "AlertBody",
    "Clock",
    "CommandAck",
    "CommandBody",
    "CommandName",
    "CommandStage",
    "ControllerState",
    "Envelope",
    "EventType",
    "FirmwareUpdate",
    "KeyEntry",
    "KeySet",
    "KeySetBody",
    "MediaRef",
    "NodeEvent",
    "NodeState",
    "NodeStatus",
    "Priority",
    "ProtocolError",
    "RejectedMessage",
    "ScaledClock",
    "Signer",
    "StreamFormat",
    "StreamRef",
    "SystemClock",
    "Telemetry",
    "TimelineBody",
    "TimelineItem",
    "Topics",
    "Verifier",
    "key_id",
    "load_private_key",
    "load_public_key",
    "new_private_key",
    "parse_node_report",
    "public_key_b64",
    "valid_id",
]
