"""Response bodies of the programme views; every time is Asia/Ho_Chi_Minh local."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas import Strict
from protocol import Priority


class TimelineEntry(BaseModel):
    item_id: str
    schedule_id: int
    title: str
    priority: Priority
    start: datetime
    end: datetime
    duration_ms: int


class TimelineChange(BaseModel):
    item_id: str
    schedule_id: int
    change: str
    reason: str
    original_start: datetime
    original_duration_ms: int
    start: datetime
    duration_ms: int
    by_item_id: str | None


class NodeTimelinePublic(BaseModel):
    node_id: str
    version: int
    generated_at: datetime
    horizon_end: datetime
    items: list[TimelineEntry]
    adjustments: list[TimelineChange]


class CalendarItem(BaseModel):
    schedule_id: int
    title: str
    start: datetime
    end: datetime
    duration_ms: int
    priority: Priority
    status: str
    targets: list[str]


class PlaybackRow(BaseModel):
    item_id: str
    schedule_id: int
    title: str
    node_id: str
    planned_start: datetime
    planned_duration_ms: int
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    detail: str


class QuietHoursIn(Strict):
    start: str = Field(examples=["22:00"], description="Local HH:MM")
    end: str = Field(examples=["05:30"], description="Local HH:MM; before start crosses midnight")


class QuietHoursPublic(BaseModel):
    area_id: str
    own: QuietHoursIn | None = Field(description="Set on this area itself")
    effective: QuietHoursIn | None = Field(description="What applies, perhaps from an area above")
    from_area: str | None
