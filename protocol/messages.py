"""Payload models of protocol v1. Times are epoch milliseconds (UTC), durations milliseconds.

Integers rather than floats or ISO strings keep the signed bytes canonical in any language.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PROTOCOL_VERSION = 1

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
EpochMs = Annotated[int, Field(ge=0, le=32_503_680_000_000)]  # up to year 3000
ShortText = Annotated[str, StringConstraints(max_length=200)]


class Model(BaseModel):
    """Strict-enough base: unknown fields are ignored (forward compatible), wrong types refused."""

    model_config = ConfigDict(extra="ignore", frozen=False)


class Priority(StrEnum):
    """Circular 39/2020/TT-BTTTT priority levels, lowest first."""

    normal = "normal"
    priority = "priority"
    emergency = "emergency"

    @property
    def rank(self) -> int:
        return {"normal": 0, "priority": 1, "emergency": 2}[self.value]


class NodeStatus(StrEnum):
    online = "online"
    offline = "offline"  # a clean shutdown said so
    lost = "lost"  # the broker published the last will


class ControllerState(Model):
    """`{prefix}/v1/controller/state`, retained; also the controller's last will."""

    v: Literal[1] = 1
    status: Literal["online", "offline"]
    ts: EpochMs
    instance: ShortText = ""
    # It reads several events in one message (a JSON array): a node sends arrays only while
    # the controller's latest state says so, so that an older controller loses none.
    event_arrays: bool = False


class NodeState(Model):
    """`{prefix}/v1/node/{id}/state`, retained; the last will carries status `lost`."""

    v: Literal[1] = 1
    node_id: Id
    status: NodeStatus
    ts: EpochMs
    boot: int = Field(ge=0, default=0)
    firmware: ShortText = ""
    areas: list[Id] = Field(default_factory=list, max_length=32)


class Telemetry(Model):
    """`{prefix}/v1/node/{id}/telemetry`, QoS 0: the heartbeat.

    `null` means unknown: the node has no way to measure it (no thermal sensor, no modem, no
    battery board, no speaker check) or the reading failed. A node never reports a value it
    did not measure, and the controller raises no alarm on an unknown.
    """

    v: Literal[1] = 1
    node_id: Id
    ts: EpochMs
    uptime_s: int = Field(ge=0, default=0)
    volume: int = Field(ge=0, le=100, default=70)
    signal_dbm: int | None = Field(default=None, ge=-150, le=0)
    temperature_c: float | None = Field(default=None, ge=-40, le=150)
    # Defaults are what a node that predates unknowns meant by leaving them out.
    power: Literal["mains", "battery"] | None = "mains"
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    supply_v: float | None = Field(default=None, ge=0, le=400)
    speaker_ok: bool | None = True
    amplifier_ok: bool | None = True
    storage_free_mb: int | None = Field(default=None, ge=0)
    now_playing: ShortText | None = None
    timeline_version: int = Field(ge=0, default=0)
    rejected_messages: int = Field(ge=0, default=0)
    # Added after v1 was first published (a node that predates them leaves them out: unknown).
    memory_free_mb: int | None = Field(
        default=None, ge=0, description="Memory available to programs (MemAvailable), MiB"
    )
    load_1m: float | None = Field(default=None, ge=0, description="1-minute load average")
    network: ShortText | None = Field(
        default=None, description="The network interface of the default route, e.g. wlan0"
    )
    clock_synced: bool | None = Field(
        default=None, description="The time-sync daemon (chrony, timesyncd) says it is in sync"
    )
    clock_source: ShortText | None = Field(
        default=None, description="Which daemon said so: chrony or timesyncd"
    )
    clock_offset_ms: float | None = Field(
        default=None,
        ge=-86_400_000,
        le=86_400_000,
        description="The daemon's estimate of this clock minus true time (positive: ahead)",
    )
    controller_delay_ms: int | None = Field(
        default=None,
        ge=-86_400_000,
        le=86_400_000,
        description="The smallest recent (node receive time − controller issue time) of live "
        "controller messages: the node's clock offset from the controller's plus the network "
        "delay (docs/protocol.md, 'Clock offset')",
    )


class EventType(StrEnum):
    timeline_applied = "timeline_applied"
    media_ready = "media_ready"
    media_failed = "media_failed"
    playback_started = "playback_started"
    playback_finished = "playback_finished"
    playback_failed = "playback_failed"
    playback_preempted = "playback_preempted"
    playback_missed = "playback_missed"
    message_rejected = "message_rejected"
    alert_received = "alert_received"
    alert_started = "alert_started"
    alert_finished = "alert_finished"
    alert_stopped = "alert_stopped"
    alert_failed = "alert_failed"
    keys_applied = "keys_applied"  # detail: "serial N: kid, kid"
    # A stream item's health (docs/protocol.md, "Streams"); item_id is the timeline item's.
    stream_connected = "stream_connected"  # detail: content type, "recovered" after a fallback
    stream_stalled = "stream_stalled"  # no bytes for a while: the node reconnects
    stream_reconnecting = "stream_reconnecting"  # detail: attempt, delay, why
    stream_bitrate = "stream_bitrate"  # detail: "64.1 kb/s, 1234 frames"
    stream_failed = "stream_failed"  # the source is dead: the fallback (if any) plays


class NodeEvent(Model):
    """`{prefix}/v1/node/{id}/events`, QoS 1. `id` is unique; the controller de-duplicates by it.

    Nodes keep events while offline and send them later, so `ts` (when it happened on the node)
    may be much older than when the controller receives it.
    """

    v: Literal[1] = 1
    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{8,64}$")]
    node_id: Id
    ts: EpochMs
    type: EventType
    item_id: ShortText | None = None
    broadcast_id: ShortText | None = None
    timeline_version: int | None = Field(default=None, ge=0)
    sha256: Sha256Hex | None = None
    detail: Annotated[str, StringConstraints(max_length=500)] = ""


# An alert's audio travels inside the alert up to this size (base64 of about 192 KB, some 30 s
# of speech at 48 kb/s); longer messages are downloaded (and played while they download).
MAX_INLINE_MEDIA_BYTES = 192 * 1024
MAX_INLINE_MEDIA_B64 = 4 * ((MAX_INLINE_MEDIA_BYTES + 2) // 3)


class MediaRef(Model):
    url: Annotated[str, StringConstraints(max_length=2000)]
    sha256: Sha256Hex
    size: int = Field(ge=0)


class StreamFormat(StrEnum):
    mp3 = "mp3"  # MPEG audio over HTTP (an Icecast mount, the controller's relay or live)
    aac = "aac"  # ADTS AAC over HTTP
    hls = "hls"  # an HLS playlist (.m3u8) of MP3 or AAC segments


class StreamRef(Model):
    """An audio stream to play for the item's duration, instead of its media.

    The item's `media` is then what plays when the stream cannot: the fallback recording
    (`fallback` true) or, without one, a placeholder that a node which predates streams plays.
    """

    url: Annotated[str, StringConstraints(max_length=2000)]
    format: StreamFormat = StreamFormat.mp3
    live: bool = Field(
        default=False, description="A live broadcast: the item ends when its source ends it"
    )
    auth: bool = Field(
        default=False, description="Send the node's media token (the controller's own streams)"
    )
    fallback: bool = Field(default=False, description="`media` is a recording to fall back to")


class TimelineItem(Model):
    """One thing to play at an absolute time on the node's own clock."""

    item_id: ShortText
    broadcast_id: ShortText
    start: EpochMs
    duration_ms: int = Field(ge=0, le=24 * 3600 * 1000)
    priority: Priority = Priority.normal
    title: ShortText = ""
    media: MediaRef
    volume: int | None = Field(default=None, ge=0, le=100)
    # Added after v1 was first published; a node that ignores it plays `media` instead.
    stream: StreamRef | None = None


class TimelineBody(Model):
    """Body of the signed `timeline` message, `{prefix}/v1/node/{id}/timeline`, retained.

    The whole desired state for the node's rolling horizon: a node that receives version N can
    forget every earlier version.
    """

    node_id: Id
    version: int = Field(ge=1)
    generated_at: EpochMs
    horizon_end: EpochMs
    items: list[TimelineItem] = Field(default_factory=list, max_length=2000)
    # Media to hold in advance though nothing is scheduled with it: the alert templates, so an
    # emergency starts without waiting for a download.
    prefetch: list[MediaRef] = Field(default_factory=list, max_length=32)


class CommandName(StrEnum):
    volume = "volume"
    stop = "stop"
    test_tone = "test_tone"
    resync = "resync"
    reboot = "reboot"
    update_firmware = "update_firmware"


class CommandBody(Model):
    """Body of the signed `cmd` message, `{prefix}/v1/node/{id}/cmd`."""

    node_id: Id
    command: CommandName
    args: dict[str, Any] = Field(default_factory=dict)


class FirmwareUpdate(Model):
    """`args` of the `update_firmware` command: the image to fetch with the node's token."""

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    url: Annotated[str, StringConstraints(max_length=2000)]
    sha256: Sha256Hex
    size: int = Field(ge=1)


class CommandStage(StrEnum):
    """How far a long command (a firmware update) has come; reported in acks on the way."""

    downloading = "downloading"
    verifying = "verifying"
    installing = "installing"
    rebooting = "rebooting"
    done = "done"
    failed = "failed"


class CommandAck(Model):
    """`{prefix}/v1/node/{id}/cmd/ack`: `cmd_id` is the command envelope's id.

    A long command sends progress acks (`final` false, with a `stage`) before its one final
    ack. Both fields have defaults, so an ack without them is final, as it always was.
    """

    v: Literal[1] = 1
    node_id: Id
    cmd_id: ShortText
    ts: EpochMs
    ok: bool
    detail: Annotated[str, StringConstraints(max_length=500)] = ""
    final: bool = True
    stage: CommandStage | None = None
    firmware: ShortText | None = Field(
        default=None, description="The firmware version the node runs as it sends this ack"
    )


class AlertBody(Model):
    """Body of the signed `alert` message on `{prefix}/v1/area/{area_id}/alert`.

    `play` is published retained while the alert is active, so a node that connects later still
    gets it; `cancel` is published once (not retained) and the retained `play` is cleared.
    An update is a new `play` with the same `alert_id` and a higher `version`.
    """

    alert_id: ShortText
    version: int = Field(ge=1, default=1)
    action: Literal["play", "cancel"]
    area: Id | None = Field(
        default=None,
        description="The area whose alert topic this message is for. Signed with the rest, so "
        "a captured alert cannot be replayed onto another area's topic: a node refuses an alert "
        "that names no area or another area than the topic it came on (`wrong_area`).",
    )
    title: ShortText = ""
    media: MediaRef | None = None
    duration_ms: int = Field(ge=0, le=3600 * 1000, default=0)
    repeat: int = Field(ge=0, le=100, default=3, description="0: until cancelled or expired")
    pause_ms: int = Field(ge=0, le=600_000, default=3000)
    volume: int | None = Field(default=None, ge=0, le=100)
    test: bool = False
    expires: EpochMs
    play_by: EpochMs | None = Field(
        default=None,
        description="When its last repetition has ended where it was heard: a node that gets "
        "the alert only after this does not sound it (it joined after the alert was over). "
        "None: `repeat` 0, sounding until cancelled or expired.",
    )
    media_data: Annotated[str, StringConstraints(max_length=MAX_INLINE_MEDIA_B64)] | None = Field(
        default=None,
        description="The media itself (base64), when small enough to travel with the alert: "
        "a node that does not hold it yet plays at once, without a download. `media` still "
        "names it (sha256, size, and a URL for nodes that predate this field).",
    )
