"""Request and response bodies of the REST API (never table objects with secrets in them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.models import AreaKind
from protocol import Priority

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AreaCreate(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Stable id, e.g. 'xa-tan-lap' or 'thon-1'")
    name: str = Field(min_length=1, max_length=200)
    kind: AreaKind
    parent_id: str | None = Field(default=None, pattern=ID_PATTERN)


class AreaPublic(BaseModel):
    id: str
    name: str
    kind: AreaKind
    parent_id: str | None


class NodeCreate(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    area_id: str = Field(pattern=ID_PATTERN)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    hardware: str = Field(default="", max_length=100)


class NodePublic(BaseModel):
    id: str
    name: str
    area_id: str
    lat: float | None
    lon: float | None
    hardware: str
    firmware: str
    status: str
    last_seen: datetime | None
    boot: int
    retired: bool
    timeline_version: int


class NodeProvisioned(BaseModel):
    node: NodePublic
    provisioning: dict[str, Any] = Field(
        description="The device's provisioning file. It holds the node's broker password: "
        "store it on the device; it is not shown again."
    )


class AnnouncementCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)


class AnnouncementPublic(BaseModel):
    id: int
    title: str
    text: str
    normalized_text: str
    media_sha256: str
    media_url: str
    duration_s: float
    loudness_lufs: float | None
    engine: str
    voice: str
    created_at: datetime


class TargetsIn(Strict):
    areas: list[str] = Field(default_factory=list, max_length=5000)
    nodes: list[str] = Field(default_factory=list, max_length=5000)


class ScheduleCreate(Strict):
    announcement_id: int = Field(ge=1)
    starts_at: datetime = Field(
        description="ISO 8601; without an offset it is Asia/Ho_Chi_Minh local time"
    )
    targets: TargetsIn
    priority: Priority = Priority.normal


class SchedulePublic(BaseModel):
    id: int
    announcement_id: int
    starts_at: datetime
    priority: Priority
    status: str
    targets: TargetsIn
    created_at: datetime


class DeliveryPublic(BaseModel):
    node_id: str
    item_id: str
    state: str
    planned_start: datetime
    timeline_version: int
    delivered_at: datetime | None
    downloaded_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    failed_at: datetime | None
    detail: str


class DeliverySummary(BaseModel):
    schedule_id: int
    nodes: int
    counts: dict[str, int]
    deliveries: list[DeliveryPublic]
