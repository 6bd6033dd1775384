"""Request and answer bodies of service accounts and bulletins from upper levels."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas import Strict
from protocol import Priority

AREAS = Field(min_length=1, max_length=200, description="Target area ids")


class ServiceAccountCreate(Strict):
    name: str = Field(min_length=1, max_length=64, description="e.g. 'tinh-hn-ttcs'")
    description: str = Field(default="", max_length=200)
    areas: list[str] = Field(min_length=1, max_length=200, description="Where it may act")
    scopes: list[str] = Field(min_length=1, max_length=10, description="e.g. bulletins:push")
    expires_at: datetime | None = Field(default=None, description="None: never expires")


class ServiceAccountPublic(BaseModel):
    id: int
    name: str
    description: str
    prefix: str
    areas: list[str]
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None
    last_used_ip: str
    uses: int
    created_by: str
    created_at: datetime


class ServiceAccountCreated(ServiceAccountPublic):
    key: str = Field(description="Shown once: store it now; only its digest is kept")


class BulletinCreate(Strict):
    id: str = Field(min_length=1, max_length=300, description="The bulletin's id in your system")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20000, description="Read out by the voice")
    category: str = Field(default="", max_length=40, description="e.g. 'policy', 'news'")
    areas: list[str] = AREAS
    priority: Priority = Priority.priority
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    starts_at: datetime | None = Field(default=None, description="Default: soon after arrival")


class PlacedSchedule(BaseModel):
    schedule_id: int | None = None
    rule_id: int | None = None
    areas: list[str]
    outcome: str = ""


class BulletinPublic(BaseModel):
    id: int
    source: str
    external_id: str
    title: str
    category: str
    priority: str
    areas: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    announcement_id: int | None = Field(description="None while its content is being made")
    schedules: list[PlacedSchedule]
    received_at: datetime


class BulletinRuleCreate(Strict):
    area_id: str = Field(min_length=1, max_length=64, description="The officer's area")
    source: str = Field(default="", max_length=80, description="svc:<account> or feed:<id>")
    category: str = Field(default="", max_length=40)
    at_time: str = Field(description="Local HH:MM")
    weekdays: str = Field(default="", max_length=40, description="MO,TU,…; empty: every day")
    targets: list[str] = AREAS


class BulletinRulePublic(BaseModel):
    id: int
    area_id: str
    source: str
    category: str
    at_time: str
    weekdays: str
    targets: list[str]
    active: bool
    created_by: str
    created_at: datetime


class BulletinFeedCreate(Strict):
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=1000, description="RSS or Atom, http(s)")
    category: str = Field(default="", max_length=40)
    areas: list[str] = AREAS
    priority: Priority = Priority.priority
    silent_after_s: int = Field(default=86400, ge=60, le=90 * 86400)


class BulletinFeedPublic(BaseModel):
    id: int
    name: str
    url: str
    category: str
    areas: list[str]
    priority: str
    silent_after_s: int
    active: bool
    last_polled_at: datetime | None
    last_status: str
    last_new_at: datetime | None
    silent_since: datetime | None
    created_by: str


class ScheduleState(BaseModel):
    schedule_id: int
    areas: list[str]
    status: str = Field(description="pending, scheduled, rejected or cancelled")
    starts_at: datetime
    approved_by: str | None
    deliveries: dict[str, int] = Field(description="Loudspeakers by delivery state")


class BulletinStatus(BulletinPublic):
    states: list[ScheduleState]
