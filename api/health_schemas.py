"""Request and response bodies of the device-health API: alarms, telemetry, fleet counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import NodePublic, Strict


class ClockOffsetPublic(BaseModel):
    """The node's clock minus the controller's (positive: the node is ahead)."""

    offset_ms: float
    method: Literal["two_way", "node_only", "controller_only"] = Field(
        description="two_way: the midpoint of both directions' bounds; node_only: an upper "
        "bound (the node's measure); controller_only: a lower bound (from heartbeats)"
    )
    low_ms: float | None
    high_ms: float | None


class NodeHealthPublic(NodePublic):
    state: str = Field(description="online, offline, flapping or unknown (never seen)")
    alarms: list[str] = Field(description="Kinds of the node's alarms not yet cleared")
    clock: ClockOffsetPublic | None = Field(
        default=None, description="Null: nothing heard from the node since the controller started"
    )
    telemetry: dict[str, Any] | None = Field(
        default=None,
        description="The node's latest heartbeat (protocol `Telemetry`; a null value is "
        "unknown: not measured or not checked) and `received`, when the controller got it",
    )


class AlarmPublic(BaseModel):
    id: int
    node_id: str
    area_id: str | None
    kind: str
    severity: str
    state: Literal["open", "acknowledged", "cleared"]
    detail: str
    raised_at: datetime
    acked_at: datetime | None
    acked_by: str | None
    ack_note: str
    cleared_at: datetime | None
    clear_detail: str
    notified_at: datetime | None
    notifications: int


class AlarmAck(Strict):
    note: str = Field(default="", max_length=500, description="What is being done about it")


class TelemetryHistory(BaseModel):
    node_id: str
    resolution: Literal["full", "hourly"] = Field(
        description="full: every heartbeat; hourly: min/avg/max per hour (long or old ranges)"
    )
    start: datetime
    end: datetime
    points: list[dict[str, Any]]


class NodeEventPublic(BaseModel):
    ts: datetime
    source: Literal["state", "alarm", "node"]
    type: str
    detail: str
    ref: str | None = Field(description="Alarm id, or the item the node event is about")


class AreaCounts(BaseModel):
    area_id: str
    name: str
    nodes: int
    online: int
    offline: int
    flapping: int
    unknown: int
    alarmed: int


class FleetTotals(BaseModel):
    nodes: int
    online: int
    offline: int
    flapping: int
    unknown: int
    alarmed: int


class NodeList(BaseModel):
    """One page of nodes, by id, with how many match and how many are in each state."""

    items: list[NodeHealthPublic]
    total: int = Field(description="Nodes matching every filter")
    offset: int
    limit: int
    next_after: str | None = Field(
        default=None,
        description="More nodes match: give this as `after` for the next page (null on the last)",
    )
    prev_before: str | None = Field(
        default=None,
        description="Nodes match before this page: give this as `before` for the page before "
        "(null on the first)",
    )
    counts: FleetTotals = Field(
        description="Nodes matching every filter but `state`, per state (to show beside a "
        "state filter's choices)"
    )


class FleetSummary(BaseModel):
    area_id: str | None
    totals: FleetTotals
    areas: list[AreaCounts]
