"""Emergency alerts on a node: one per alert_id at its highest version, one sounding at a time."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path

from firmware_sim import alert_memory
from firmware_sim.alert_run import AlertPlayed, AlertRun
from firmware_sim.health import NodeHealth
from firmware_sim.media import MediaCache
from firmware_sim.outbox import Emit
from firmware_sim.playback import PLAYED_KEPT, Playback
from firmware_sim.sounds import Sounds
from firmware_sim.stream import MediaStream
from protocol import AlertBody, Clock, EventType, MediaRef

log = logging.getLogger(__name__)


class AlertDesk:
    """Accepts verified alert bodies (from any of the node's area topics) and runs them.

    The same alert may arrive on several area topics: it is keyed by `alert_id` and only a
    higher `version` changes anything. An alert cancelled, finished or failed on this node is
    `settled` at its version and does not play again at that version or below. Different
    alerts wait their turn in arrival order; an update keeps the place of the version it
    replaces.
    """

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        emit: Emit,
        media: MediaCache,
        playback: Playback,
        sounds: Sounds | None,
        health: NodeHealth,
        memory: Path | None = None,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.emit = emit
        self.media = media
        self.playback = playback
        self.sounds = sounds  # None: alerts only take their time (no player)
        self.health = health
        self.played: deque[AlertPlayed] = deque(maxlen=PLAYED_KEPT)  # the latest, bounded
        self.runs: dict[str, AlertRun] = {}
        # Kept on disk (`memory`), so a restart does not sound a finished alert again.
        self.memory = memory
        self.settled: dict[str, int] = alert_memory.load(memory)
        self.bad_media: set[str] = set()
        self.queue: list[AlertRun] = []
        self.holder: AlertRun | None = None
        self._streams: dict[str, MediaStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> AlertBody | None:
        """The alert that holds the speaker now (sounding or pausing between playings)."""
        return self.holder.body if self.holder is not None else None

    def accept(self, body: AlertBody) -> None:
        if body.action == "cancel":
            self._cancel(body)
            return
        old = self.runs.get(body.alert_id)
        known = max(old.body.version if old else 0, self.settled.get(body.alert_id, 0))
        if body.version <= known:
            # Another area topic, or a retained copy of what this node already handles.
            log.debug("%s: alert %s v%d already known", self.node_id, body.alert_id, body.version)
            return
        assert body.media is not None  # checked on the way in
        if body.expires <= self.clock.now_ms():
            if old is not None:
                old.stop(f"updated to v{body.version}")
            AlertRun(self, body, None).end("failed", EventType.alert_failed, "expired")
            return
        if body.play_by is not None and body.play_by <= self.clock.now_ms():
            # Its last repetition is over where it sounded: a node that only gets it now
            # (back from an outage, a stale retained copy) has nothing to catch up on.
            if old is not None:
                old.stop(f"updated to v{body.version}")
            self._settle(body.alert_id, body.version)
            log.info("%s: alert %s over before it came", self.node_id, body.alert_id)
            return
        if body.media.sha256 in self.bad_media:
            if old is not None:
                old.stop(f"updated to v{body.version}")
            run = AlertRun(self, body, None)
            run.event(EventType.alert_received)
            run.end("failed", EventType.alert_failed, "media failed verification before")
            return
        run = AlertRun(self, body, self._stream_for(body.media))
        self.runs[body.alert_id] = run
        if old is not None and old in self.queue:
            self.queue.insert(self.queue.index(old), run)
        else:
            self.queue.append(run)
        if old is not None:
            old.stop(f"updated to v{body.version}")
        run.event(EventType.alert_received, body.title)
        self._wake_head()
        if run.stream is None and run.turn.is_set():
            try:
                run.begin()  # the audio is here and the speaker is its: it sounds now
            except Exception as exc:  # as in AlertRun.run: a bug must free the speaker
                log.exception("%s: alert %s crashed", self.node_id, body.alert_id)
                run.end("failed", EventType.alert_failed, f"internal error {type(exc).__name__}")
                return
        run.task = asyncio.create_task(run.run(), name=f"alert-{body.alert_id[:40]}")
        self._tasks.add(run.task)
        run.task.add_done_callback(self._tasks.discard)

    def _cancel(self, body: AlertBody) -> None:
        run = self.runs.get(body.alert_id)
        version = max(body.version, run.body.version if run else 0)
        self._settle(body.alert_id, version)
        if run is not None:
            run.stop(f"cancelled (v{body.version})")
        else:
            log.info("%s: cancel for alert %s not active here", self.node_id, body.alert_id)

    def take_speaker(self, run: AlertRun) -> None:
        self.holder = run
        self.playback.hold(run.owner, f"pre-empted by alert {run.body.alert_id}")
        # An override, not a change: the node's own volume (and volume commands) stay intact.
        if run.body.volume is not None:
            self.health.alert_volume = run.body.volume

    def settle(self, run: AlertRun) -> None:
        """Forget a run that has ended; safe to call more than once."""
        b = run.body
        if self.runs.get(b.alert_id) is run:
            del self.runs[b.alert_id]
        self._settle(b.alert_id, b.version)
        if self.holder is run:
            self.holder = None
            self.health.alert_volume = None
            self.playback.release(run.owner)
        if run in self.queue:
            self.queue.remove(run)
            self._wake_head()
        stream = run.stream
        if stream is None:
            return
        if stream.corrupt:
            self.bad_media.add(stream.ref.sha256)
        in_use = any(r.stream is stream for r in self.runs.values())
        if not in_use and self._streams.get(stream.ref.sha256) is stream:
            if not stream.ended.is_set():
                stream.close()  # nobody wants it any more (cancelled while downloading)
            del self._streams[stream.ref.sha256]

    def _settle(self, alert_id: str, version: int) -> None:
        if self.settled.get(alert_id, 0) >= version:
            return
        alert_memory.remember(self.settled, alert_id, version)
        alert_memory.save(self.memory, self.settled)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    def _wake_head(self) -> None:
        if self.queue:
            self.queue[0].turn.set()

    def _stream_for(self, ref: MediaRef) -> MediaStream | None:
        """None when the media is already verified here: the alert can sound at once."""
        if self.media.is_ready(ref.sha256):
            return None
        stream = self._streams.get(ref.sha256)
        if stream is None or stream.error is not None:
            stream = self._streams[ref.sha256] = MediaStream(self.media, ref)
        return stream
