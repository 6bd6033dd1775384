"""Request and response bodies of the device-health API: alarms, telemetry, fleet counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import NodePublic, Strict


class NodeHealthPublic(NodePublic):
    state: str = Field(description="online, offline, flapping or unknown (never seen)")
    alarms: list[str] = Field(description="Kinds of the node's alarms not yet cleared")


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


class FleetSummary(BaseModel):
    area_id: str | None
    totals: FleetTotals
    areas: list[AreaCounts]
