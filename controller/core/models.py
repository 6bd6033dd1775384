"""Database tables (SQLModel). Times are timezone-aware, stored in UTC."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, event, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class AreaKind(StrEnum):
    province = "province"
    district = "district"
    commune = "commune"
    village = "village"


class Area(SQLModel, table=True):
    """A node of the administrative tree: province → (district) → commune → village."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: AreaKind = Field(sa_column=Column(String(16), nullable=False))
    parent_id: str | None = Field(default=None, foreign_key="area.id", index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Node(SQLModel, table=True):
    """A loudspeaker cluster. `status` comes from the broker (state, will) and heartbeats."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    area_id: str = Field(foreign_key="area.id", index=True, max_length=64)
    lat: float | None = None
    lon: float | None = None
    hardware: str = Field(default="", max_length=100)
    firmware: str = Field(default="", max_length=100)
    status: str = Field(default="unknown", max_length=16, index=True)
    last_seen: datetime | None = None
    boot: int = 0
    retired: bool = Field(default=False, index=True)
    mqtt_password_hash: str = Field(default="", max_length=300)
    timeline_version: int = 0
    timeline_digest: str = Field(default="", max_length=64)
    installed_on: date | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # What a search of the node list matches, in SQL on any database: see search_folded().
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


def search_folded(text: str) -> str:
    """`text` as searches compare it: composed (NFC), case folded in Python (SQLite's lower()
    knows only ASCII: Đ, Ô …)."""
    return unicodedata.normalize("NFC", text).casefold()


def without_marks(text: str) -> str:
    """`text` without Vietnamese tones and marks (Đà Nẵng → Da Nang), for the searches of
    people who type without them."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.replace("đ", "d").replace("Đ", "D")


def node_search_text(node_id: str, name: str) -> str:
    """The node's id and name folded, then once more without marks: a search typed with its
    marks matches the first, one typed without them the second."""
    folded = search_folded(f"{node_id}\n{name}")
    return f"{folded}\n{without_marks(folded)}"


@event.listens_for(Node, "before_insert")
@event.listens_for(Node, "before_update")
def _keep_search_text(_mapper: Any, _connection: Any, node: Node) -> None:
    node.search_text = node_search_text(node.id, node.name)


class ContentCategory(StrEnum):
    """What a piece of content is, for the province's reports; relays and live broadcasts are
    known by what they are (stream entries, live), emergencies also by alerts."""

    policy_law = "policy_law"  # chủ trương, chính sách, pháp luật
    local_news = "local_news"  # tin tức địa phương
    emergency = "emergency"  # khẩn cấp (a scheduled broadcast; alerts count here too)


class Announcement(SQLModel, table=True):
    """A text rendered once to speech and stored by content address."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    normalized_text: str = Field(sa_column=Column(Text, nullable=False, default=""))
    media_sha256: str = Field(max_length=64, index=True)
    media_size: int = 0
    duration_ms: int = 0
    loudness_lufs: float | None = None
    engine: str = Field(default="", max_length=50)
    voice: str = Field(default="", max_length=50)
    area_id: str | None = Field(default=None, foreign_key="area.id", index=True, max_length=64)
    created_by: str = Field(default="", max_length=64)
    source: str = Field(default="text", max_length=16)  # "text", "upload" or "playlist"
    fallback_from: str | None = Field(default=None, max_length=50)
    repeat: int = 1
    category: str = Field(
        default=ContentCategory.local_news,
        sa_column=Column(String(16), nullable=False, server_default="local_news"),
    )
    created_at: datetime = Field(default_factory=utcnow)


class PlaylistItem(SQLModel, table=True):
    """One entry of a playlist (an announcement of source "playlist"), in `position` order.

    `kind` is "announcement" (a rendered text or an uploaded recording), "chime" or "silence";
    `duration_ms` is the entry's length, copied from the announcement when it is one.
    """

    __table_args__ = (UniqueConstraint("playlist_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    playlist_id: int = Field(foreign_key="announcement.id", index=True)
    position: int
    kind: str = Field(max_length=16)
    announcement_id: int | None = Field(default=None, foreign_key="announcement.id", index=True)
    duration_ms: int = 0
    # The chime's own media (an announcement's is on the announcement).
    media_sha256: str | None = Field(default=None, max_length=64)
    media_size: int = 0
    # kind "stream": a relayed station ("live:<id>" for a live broadcast); `announcement_id`
    # is then its fallback recording, and the media above a placeholder when it has none.
    stream_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stream_format: str | None = Field(default=None, max_length=8)
    via_controller: bool = False


class NodeGroup(SQLModel, table=True):
    """A named set of loudspeakers within one area (e.g. "the market horns"), a schedule target."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    area_id: str = Field(foreign_key="area.id", index=True, max_length=64)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class NodeGroupMember(SQLModel, table=True):
    group_id: str = Field(foreign_key="nodegroup.id", primary_key=True, max_length=64)
    node_id: str = Field(foreign_key="node.id", primary_key=True, max_length=64)


class Abbreviation(SQLModel, table=True):
    """An entry of the reading dictionary: for every area (`area_id` None, administrators'),
    or a commune's local list (place names) applied to its announcements and those below."""

    __table_args__ = (UniqueConstraint("term", "area_id", name="uq_abbreviation_term_area"),)

    id: int | None = Field(default=None, primary_key=True)
    term: str = Field(max_length=64)
    area_id: str | None = Field(default=None, foreign_key="area.id", index=True, max_length=64)
    reading: str = Field(max_length=300)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ScheduleStatus(StrEnum):
    pending = "pending"  # drafted by commune staff, waiting for an officer
    scheduled = "scheduled"
    rejected = "rejected"
    cancelled = "cancelled"


class Schedule(SQLModel, table=True):
    """What plays, where and when: once at `starts_at`, or by an RRULE whose first time it is.

    `exdates` is a JSON list of local dates ("2025-09-02") and local times ("2025-09-03T06:00").
    """

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    title: str = Field(default="", max_length=200)
    starts_at: datetime = Field(index=True)
    rrule: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    exdates: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    ends_on: date | None = None
    priority: str = Field(default="normal", max_length=16)
    on_preempt: str = Field(default="preempt", max_length=16)
    status: str = Field(default=ScheduleStatus.scheduled, max_length=16, index=True)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: datetime | None = None


class QuietHoursRule(SQLModel, table=True):
    """An area's nightly quiet hours (local "HH:MM"); areas below inherit them."""

    area_id: str = Field(primary_key=True, foreign_key="area.id", max_length=64)
    start: str = Field(max_length=5)
    end: str = Field(max_length=5)
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class ScheduleTarget(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("schedule_id", "kind", "target_id"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    kind: str = Field(max_length=8)  # "area" | "node" | "group"
    target_id: str = Field(max_length=64)


class DeliveryState(StrEnum):
    planned = "planned"
    delivered = "delivered"
    downloaded = "downloaded"
    started = "started"
    finished = "finished"
    failed = "failed"
    preempted = "preempted"
    missed = "missed"
    cancelled = "cancelled"


class Delivery(SQLModel, table=True):
    """One occurrence on one node: what was planned and what the node reported."""

    __table_args__ = (
        UniqueConstraint("item_id", "node_id"),
        Index("ix_delivery_schedule_node", "schedule_id", "node_id"),
        # Each node's newest item (the dead-air check): a broadcast starts on every node at
        # the same moment, so the planned start alone matches thousands of rows.
        Index("ix_delivery_node_start", "node_id", "planned_start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(max_length=100)
    schedule_id: int = Field(foreign_key="schedule.id")
    node_id: str = Field(foreign_key="node.id", max_length=64)  # ix_delivery_node_start
    planned_start: datetime = Field(index=True)  # the dead-air check reads recent items
    planned_duration_ms: int = 0
    state: str = Field(default=DeliveryState.planned, max_length=16)
    timeline_version: int = 0
    delivered_at: datetime | None = None
    downloaded_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failed_at: datetime | None = None
    detail: str = Field(default="", max_length=500)


class NodeEventRecord(SQLModel, table=True):
    """Every event a node reported, once: the primary key is the node's event id."""

    id: str = Field(primary_key=True, max_length=64)
    node_id: str = Field(index=True, max_length=64)
    type: str = Field(max_length=32)
    ts: datetime = Field(index=True)
    received_at: datetime = Field(default_factory=utcnow)
    item_id: str | None = Field(default=None, max_length=200)
    detail: str = Field(default="", max_length=500)


class Role(StrEnum):
    """Roles of people; each but administrator and auditor is scoped to an area subtree."""

    admin = "admin"
    officer = "officer"
    commune_staff = "commune_staff"
    technician = "technician"
    auditor = "auditor"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    full_name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=20)
    area_id: str | None = Field(default=None, foreign_key="area.id", max_length=64)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class RefreshToken(SQLModel, table=True):
    """Refresh tokens are stored so that logout and password changes can revoke them."""

    jti: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    expires_at: datetime
    revoked: bool = False


class AuditEntry(SQLModel, table=True):
    """Append-only record; `hash` chains each entry to the previous one."""

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64, index=True)
    role: str = Field(default="", max_length=20)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=200)
    detail: str = Field(sa_column=Column(Text, nullable=False, default=""))
    ip: str = Field(default="", max_length=64)
    outcome: str = Field(default="ok", max_length=16)
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


class AlertStatus(StrEnum):
    active = "active"
    cancelled = "cancelled"
    expired = "expired"
    ended = "ended"  # by an all-clear
    finished = "finished"  # played out: its last repetition is over


class Alert(SQLModel, table=True):
    """An emergency alert: one signed, retained publish per target area; nodes confirm."""

    id: str = Field(primary_key=True, max_length=40)
    version: int = 1
    title: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False, default=""))
    template: str | None = Field(default=None, max_length=32)
    media_sha256: str = Field(max_length=64)
    media_size: int = 0
    duration_ms: int = 0
    repeat: int = 3
    volume: int | None = None
    test: bool = Field(default=False, index=True)
    areas: str = Field(sa_column=Column(Text, nullable=False, default="[]"))  # JSON list
    status: str = Field(default=AlertStatus.active, max_length=16, index=True)
    expires_at: datetime
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    # When this version went out (an update starts its repetitions over); None before 0012.
    issued_at: datetime | None = None
    cancelled_by: str | None = Field(default=None, max_length=64)  # or ended by an all-clear
    cancelled_at: datetime | None = None
    cap_sender: str | None = Field(default=None, max_length=200)
    cap_identifier: str | None = Field(default=None, max_length=200, index=True)


class AlertReceipt(SQLModel, table=True):
    """What one node confirmed of one alert."""

    __table_args__ = (UniqueConstraint("alert_id", "node_id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alert.id", index=True, max_length=40)
    node_id: str = Field(max_length=64)
    version: int = 0
    received_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    failed_at: datetime | None = None
    detail: str = Field(default="", max_length=500)


class TelemetrySample(SQLModel, table=True):
    """One heartbeat at full resolution, kept for `telemetry_full_days`; `ts` is when the
    controller received it (node clocks may be wrong). None: the node could not measure it.
    `offset_ms` is the controller's estimate of the node's clock offset at the time
    (`controller.health.telemetry.ClockOffset`), `clock_synced` what the node's time daemon said."""

    __table_args__ = (Index("ix_telemetrysample_node_ts", "node_id", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(max_length=64)
    ts: datetime = Field(index=True)
    uptime_s: int = 0
    volume: int = 0
    signal_dbm: int | None = None
    temperature_c: float | None = None
    power: str | None = Field(default="mains", max_length=8)
    battery_pct: int | None = None
    supply_v: float | None = None
    speaker_ok: bool | None = True
    amplifier_ok: bool | None = True
    storage_free_mb: int | None = None
    now_playing: str | None = Field(default=None, max_length=200)
    timeline_version: int = 0
    memory_free_mb: int | None = None
    load_1m: float | None = None
    offset_ms: float | None = None
    clock_synced: bool | None = None


class TelemetryHourly(SQLModel, table=True):
    """One node's heartbeats of one hour, summarised; kept for `telemetry_keep_days`."""

    __table_args__ = (UniqueConstraint("node_id", "hour"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(max_length=64)
    hour: datetime = Field(index=True)
    samples: int = 0
    volume_avg: float | None = None
    signal_min: float | None = None
    signal_avg: float | None = None
    signal_max: float | None = None
    temperature_min: float | None = None
    temperature_avg: float | None = None
    temperature_max: float | None = None
    supply_v_min: float | None = None
    supply_v_avg: float | None = None
    supply_v_max: float | None = None
    battery_min: float | None = None
    battery_avg: float | None = None
    battery_max: float | None = None
    storage_free_mb_min: int | None = None
    uptime_max: int | None = None
    on_battery: int = 0  # samples taken on battery
    speaker_faults: int = 0  # samples with the speaker check failing
    amplifier_faults: int = 0


class NodeStateChange(SQLModel, table=True):
    """A node going online or offline, and why (state message, will, heartbeat timeout)."""

    __table_args__ = (Index("ix_nodestatechange_node_ts", "node_id", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(max_length=64)
    ts: datetime = Field(index=True)
    state: str = Field(max_length=16)
    previous: str = Field(default="unknown", max_length=16)
    reason: str = Field(default="", max_length=32)
    flapping: bool = False


class AlarmState(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    cleared = "cleared"


class Alarm(SQLModel, table=True):
    """A device fault: raised, acknowledged by a person, cleared when the condition ends.
    At most one alarm per node and kind is not cleared (a partial unique index)."""

    __table_args__ = (
        Index(
            "uq_alarm_open_node_kind",
            "node_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: str = Field(foreign_key="node.id", index=True, max_length=64)
    kind: str = Field(max_length=32, index=True)
    severity: str = Field(default="major", max_length=16)
    state: str = Field(default=AlarmState.open, max_length=16, index=True)
    detail: str = Field(default="", max_length=500)
    raised_at: datetime = Field(default_factory=utcnow, index=True)
    acked_at: datetime | None = None
    acked_by: str | None = Field(default=None, max_length=64)
    ack_note: str = Field(default="", max_length=500)
    cleared_at: datetime | None = None
    clear_detail: str = Field(default="", max_length=500)
    notified_at: datetime | None = None
    notifications: int = 0


class CommandState(StrEnum):
    pending = "pending"  # sent (or being sent), nothing heard yet
    in_progress = "in_progress"  # the node reported progress (a firmware download…)
    ok = "ok"
    failed = "failed"
    timed_out = "timed_out"
    skipped = "skipped"  # not sent: the node was offline when the command was given


class Command(SQLModel, table=True):
    """An operator's command to one node or many; each node's part is a NodeCommand."""

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=32, index=True)
    args: str = Field(sa_column=Column(Text, nullable=False, default="{}"))  # JSON object
    targets: str = Field(sa_column=Column(Text, nullable=False, default="{}"))  # JSON, as asked
    areas: str = Field(sa_column=Column(Text, nullable=False, default="[]"))  # the nodes' areas
    nodes: int = 0
    timeout_s: float = 30
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None


class NodeCommand(SQLModel, table=True):
    """One node's part of a command: the id of its signed envelope (what acks name) and what
    the node answered, or that it did not in time."""

    id: int | None = Field(default=None, primary_key=True)
    command_id: str = Field(foreign_key="command.id", index=True, max_length=32)
    node_id: str = Field(foreign_key="node.id", index=True, max_length=64)
    cmd_id: str = Field(max_length=64, index=True, unique=True)
    state: str = Field(default=CommandState.pending, max_length=16, index=True)
    stage: str = Field(default="", max_length=16)
    stages: str = Field(default="", max_length=200)  # every stage reported, comma-separated
    detail: str = Field(default="", max_length=500)
    firmware: str | None = Field(default=None, max_length=100)
    deadline: datetime = Field(index=True)
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    finished_at: datetime | None = None


class FirmwareImage(SQLModel, table=True):
    """A node firmware image in the catalogue; the bytes are stored by their sha256."""

    version: str = Field(primary_key=True, max_length=64)
    sha256: str = Field(max_length=64, index=True)
    size: int = 0
    hardware: str = Field(default="", max_length=100)  # "": for every hardware
    notes: str = Field(default="", max_length=500)
    released: bool = True
    uploaded_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class LiveStatus(StrEnum):
    on_air = "on_air"
    ended = "ended"


class LiveBroadcast(SQLModel, table=True):
    """An officer speaking live: encoded once by the controller, played by every target from
    one stream. Its `schedule_id` puts it in timelines, deliveries and the playback log."""

    id: str = Field(primary_key=True, max_length=32)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    title: str = Field(max_length=200)
    priority: str = Field(default="normal", max_length=16)
    status: str = Field(default=LiveStatus.on_air, max_length=16, index=True)
    started_by: str = Field(default="", max_length=64)
    started_at: datetime = Field(default_factory=utcnow)
    ends_by: datetime  # the longest it may last; it is stopped then
    ended_by: str | None = Field(default=None, max_length=64)
    ended_at: datetime | None = None
    end_reason: str = Field(default="", max_length=200)
    source: str = Field(default="", max_length=32)  # how the audio last came: webm, pcm, mp3…


# --- Service accounts and bulletins from upper levels -----------------------------------------


class ServiceAccount(SQLModel, table=True):
    """Another system's credentials (a provincial platform pushing bulletins): a key shown
    once, stored as a SHA-256 digest, scoped to areas and actions, expiring, revocable."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    description: str = Field(default="", max_length=200)
    # The key's public part, looked up before the secret is compared.
    prefix: str = Field(max_length=16, sa_column_kwargs={"unique": True})
    key_hash: str = Field(max_length=64)
    areas: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    scopes: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=64)
    last_used_at: datetime | None = None
    last_used_ip: str = Field(default="", max_length=64)
    uses: int = 0
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class CapFeed(SQLModel, table=True):
    """A warning agency's feed the controller follows: an Atom or RSS index of CAP documents,
    or one CAP document's address. Polled with the validators of the last answer."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    enabled: bool = True
    interval_s: int = 60
    etag: str | None = Field(default=None, max_length=400)
    last_modified: str | None = Field(default=None, max_length=100)
    polled_at: datetime | None = None
    changed_at: datetime | None = None  # the last answer with new content (not a 304)
    error: str | None = Field(default=None, max_length=500)  # the last poll's failure
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Bulletin(SQLModel, table=True):
    """A bulletin an upper level sent (pushed by a service account or read from its feed),
    and the schedules it became."""

    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_bulletin_source_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=80, index=True)  # "svc:<account>" or "feed:<feed id>"
    external_id: str = Field(max_length=300)
    title: str = Field(max_length=200)
    category: str = Field(default="", max_length=40)
    priority: str = Field(default="priority", max_length=16)
    areas: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # None only while its content is being made (the row is claimed first).
    announcement_id: int | None = Field(default=None, foreign_key="announcement.id", index=True)
    # JSON list of {"schedule_id", "rule_id" (None: waiting for approval), "areas"}.
    schedules: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    received_at: datetime = Field(default_factory=utcnow, index=True)


class BulletinRule(SQLModel, table=True):
    """An officer's standing decision: bulletins of this source and category are relayed to
    these areas at this local time (on these weekdays) without waiting for approval."""

    id: int | None = Field(default=None, primary_key=True)
    area_id: str = Field(foreign_key="area.id", index=True, max_length=64)
    source: str = Field(default="", max_length=80)  # "" matches every source
    category: str = Field(default="", max_length=40)  # "" matches every category
    at_time: str = Field(max_length=5)  # local "HH:MM"
    weekdays: str = Field(default="", max_length=40)  # "MO,TU,WE,TH,FR"; "" every day
    targets: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    active: bool = True
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class BulletinFeed(SQLModel, table=True):
    """An upper level's RSS or Atom feed followed for bulletins with audio enclosures."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    url: str = Field(max_length=1000)
    category: str = Field(default="", max_length=40)
    areas: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    priority: str = Field(default="priority", max_length=16)
    silent_after_s: int = 86400
    active: bool = True
    etag: str = Field(default="", max_length=300)
    last_modified: str = Field(default="", max_length=100)
    last_polled_at: datetime | None = None
    last_status: str = Field(default="", max_length=300)
    last_new_at: datetime | None = None  # a new entry was last seen (or the feed was added)
    silent_since: datetime | None = None  # the silence alarm, while raised
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class BulletinFeedEntry(SQLModel, table=True):
    """An entry already taken from a feed (by its id, and by its enclosure's address)."""

    __table_args__ = (UniqueConstraint("feed_id", "entry_key", name="uq_feed_entry_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="bulletinfeed.id", index=True)
    entry_key: str = Field(max_length=300)
    bulletin_id: int | None = Field(default=None, foreign_key="bulletin.id")
    outcome: str = Field(default="", max_length=300)
    seen_at: datetime = Field(default_factory=utcnow)


class CapRule(SQLModel, table=True):
    """An administrator's rule for followed warnings: which ones go out by themselves (`auto`),
    wait for an officer (`approve`) or are only recorded (`ignore`). Empty lists match all;
    `areas` matches a warning aimed at one of them or at a place inside one."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    action: str = Field(max_length=16)
    severities: str = Field(sa_column=Column(Text, nullable=False, default="[]"))  # JSON
    urgencies: str = Field(sa_column=Column(Text, nullable=False, default="[]"))
    certainties: str = Field(sa_column=Column(Text, nullable=False, default="[]"))
    areas: str = Field(sa_column=Column(Text, nullable=False, default="[]"))
    feed_id: int | None = Field(default=None, foreign_key="capfeed.id", index=True)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class CapGeocode(SQLModel, table=True):
    """An agency's area code (valueName, value) and the area of ours it stands for."""

    value_name: str = Field(primary_key=True, max_length=200)
    value: str = Field(primary_key=True, max_length=200)
    area_id: str = Field(foreign_key="area.id", index=True, max_length=64)


class CapWarningStatus(StrEnum):
    pending = "pending"  # waits for an officer's one tap
    raised = "raised"  # went out as one of our alerts (alert_id)
    rejected = "rejected"  # an officer declined it
    ignored = "ignored"  # a rule says to record it only
    refused = "refused"  # not actionable here (expired, no area of ours, …): `reason`
    superseded = "superseded"  # an update from the agency took its place before it went out
    cancelled = "cancelled"  # the agency cancelled it


class CapWarning(SQLModel, table=True):
    """One CAP document read from a followed feed, kept once per (sender, identifier, sent)."""

    __table_args__ = (UniqueConstraint("sender", "identifier", "sent", name="uq_capwarning_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int | None = Field(default=None, foreign_key="capfeed.id", index=True)
    url: str = Field(default="", max_length=2000, index=True)
    sender: str = Field(max_length=200)
    identifier: str = Field(max_length=200, index=True)
    sent: datetime
    msg_type: str = Field(max_length=16)
    cap_version: str = Field(default="1.2", max_length=8)
    test: bool = False  # a Test or Exercise document: it goes out as a test alert
    status: str = Field(default=CapWarningStatus.pending, max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=1000)
    priority: str | None = Field(default=None, max_length=16)
    severity: str | None = Field(default=None, max_length=16)
    urgency: str | None = Field(default=None, max_length=16)
    certainty: str | None = Field(default=None, max_length=16)
    title: str = Field(default="", max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False, default=""))
    areas: str = Field(sa_column=Column(Text, nullable=False, default="[]"))  # our area ids
    references: str = Field(sa_column=Column(Text, nullable=False, default="[]"))  # identifiers
    expires_at: datetime | None = None
    rule_id: int | None = None
    alert_id: str | None = Field(default=None, max_length=40, index=True)
    document: str = Field(sa_column=Column(Text, nullable=False, default=""))
    received_at: datetime = Field(default_factory=utcnow)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
