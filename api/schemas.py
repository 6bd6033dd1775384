"""Request and response bodies of the REST API (never table objects with secrets in them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.core.models import AreaKind, ContentCategory
from protocol import Priority
from schedules import Policy

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
MAX_OFFSET = 1_000_000  # the deepest row an alert's list of nodes may start at


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
    installed_on: date | None = None


class NodeProvisioned(BaseModel):
    node: NodePublic
    provisioning: dict[str, Any] = Field(
        description="The device's provisioning file. It holds the node's broker password: "
        "store it on the device; it is not shown again."
    )


class AnnouncementCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)
    engine: str | None = Field(
        default=None,
        max_length=20,
        description="espeak (offline), gtts (online, falls back to espeak) or piper; "
        "default: the deployment's engine",
    )
    repeat: int = Field(default=1, ge=1, le=2, description="2: read the text twice")
    category: ContentCategory = Field(
        default=ContentCategory.local_news,
        description="For the province's reports: policy_law, local_news or emergency",
    )


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
    fallback_from: str | None
    source: str
    repeat: int
    category: str
    created_by: str
    created_at: datetime


class TargetsIn(Strict):
    areas: list[str] = Field(default_factory=list, max_length=5000)
    nodes: list[str] = Field(default_factory=list, max_length=5000)
    groups: list[str] = Field(default_factory=list, max_length=500)


class ScheduleCreate(Strict):
    announcement_id: int = Field(ge=1)
    starts_at: datetime = Field(
        description="ISO 8601; without an offset it is Asia/Ho_Chi_Minh local time. For a "
        "repeating schedule, the rule's DTSTART"
    )
    targets: TargetsIn
    priority: Priority = Priority.normal
    title: str = Field(
        default="",
        max_length=200,
        description="Empty (the default, and as answered): the announcement's title is what the "
        "nodes get",
    )
    rrule: str | None = Field(
        default=None,
        max_length=500,
        description="RFC 5545 RRULE in local time, e.g. "
        "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR,SA;BYHOUR=6,17;BYMINUTE=0",
    )
    exdates: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Local dates (2025-09-02: that whole day) or times (2025-09-02T06:00) skipped",
    )
    ends_on: date | None = Field(default=None, description="Last local day, included")
    on_preempt: Policy = Field(
        default=Policy.preempt,
        description="When a higher priority overlaps: preempt (cut), shift, skip, or queue "
        "(also waits behind an equal priority instead of being refused)",
    )


class ScheduleUpdate(Strict):
    """A change to a schedule: the fields given replace the stored ones (`rrule: null` makes it
    play once); the rest stay. Checked as a new schedule would be."""

    announcement_id: int | None = Field(default=None, ge=1)
    starts_at: datetime | None = Field(
        default=None, description="ISO 8601; without an offset it is Asia/Ho_Chi_Minh local time"
    )
    targets: TargetsIn | None = None
    priority: Priority | None = None
    title: str | None = Field(default=None, max_length=200)
    rrule: str | None = Field(default=None, max_length=500)
    exdates: list[str] | None = Field(default=None, max_length=1000)
    ends_on: date | None = None
    on_preempt: Policy | None = None


class SkipDay(Strict):
    day: date = Field(description="The local day whose broadcasts are left out, YYYY-MM-DD")


class SchedulePublic(BaseModel):
    id: int
    announcement_id: int
    title: str
    starts_at: datetime
    rrule: str | None
    exdates: list[str]
    ends_on: date | None
    priority: Priority
    on_preempt: Policy
    status: str
    targets: TargetsIn
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None


class Decision(Strict):
    reason: str = Field(default="", max_length=500)


class DeliveryPublic(BaseModel):
    node_id: str
    node_name: str = Field(default="", description="The loudspeaker's name, as people know it")
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
