"""One stream item sounding: connect, read, reconnect with back-off, report health, fall back.

A simulated node really connects and reads the bytes, cutting them into frames and measuring
the bitrate; a real node hands the same frames to its decoder. A source that fails
`dead_after` times in a row is dead: the node reports `stream_failed` and plays the item's
fallback recording, while it keeps trying the source; when the source is back, the stream
replaces the fallback. A live stream that its source ends cleanly ends the item.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path

import httpx

from firmware_sim.outbox import Emit
from firmware_sim.player import Player, Sound, StreamSink, Volume
from protocol import EventType, StreamFormat, TimelineItem, hls
from protocol.audio_frames import FrameReader

log = logging.getLogger(__name__)


class _Refused(Exception):
    """The server answered, but not with the stream."""


class _Gone(Exception):
    """The controller says the live broadcast is over (HTTP 410)."""


class StreamRun:
    stall_s = 5.0  # no byte for this long: stalled, reconnect
    dead_after = 3  # failed attempts in a row before the source counts as dead
    backoff_min_s = 0.5
    backoff_max_s = 8.0
    bitrate_every_s = 15.0
    connect_timeout_s = 5.0

    def __init__(
        self,
        item: TimelineItem,
        version: int | None,
        player: Player,
        http: httpx.AsyncClient,
        emit: Emit,
        volume: Volume,
        fallback: Callable[[], tuple[bool, Path | None]],
    ) -> None:
        assert item.stream is not None
        self.item = item
        self.ref = item.stream
        self.version = version
        self.player = player
        self.http = http  # with the node's token as its auth for the controller's own streams
        self.emit = emit
        self.volume = volume
        self.fallback = fallback  # (verified here?, its file if the node keeps files)
        self.ended = asyncio.Event()  # a live source ended it: the item is over
        self.detail = ""
        self.bytes = 0
        self.frames = 0
        self.audio_ms = 0.0
        self.connects = 0
        self.stalls = 0
        self.attempts = 0
        self.failed = False  # the source is dead now (the fallback plays)
        self.fell_back = 0  # how many times the fallback started
        self.kbps: float | None = None  # the last bitrate measured
        self._sink: StreamSink | None = None
        self._fallback: Sound | None = None
        self._window = (0.0, 0)
        self.task = asyncio.create_task(self._run(), name=f"stream-{item.item_id[:40]}")

    def stop(self) -> None:
        self.task.cancel()
        self._silence()
        if self._fallback is not None:
            self._fallback.stop()
            self._fallback = None

    def _event(self, kind: EventType, detail: str) -> None:
        self.emit(
            kind,
            item_id=self.item.item_id,
            broadcast_id=self.item.broadcast_id,
            timeline_version=self.version,
            detail=detail[:500],
        )

    async def _run(self) -> None:
        failures = 0
        while True:
            before = self.bytes
            try:
                await self._session()
                why = "the source ended the stream"
                if self.ref.live and self.bytes > before:
                    return self._end("live broadcast ended")
            except _Gone:
                return self._end("live broadcast ended")
            except (httpx.TimeoutException, hls.HlsStalled) as exc:
                if isinstance(exc, httpx.ConnectTimeout):
                    why = "connect timed out"
                else:
                    self.stalls += 1
                    why = f"stalled: nothing for {self.stall_s:.0f} s"
                    self._event(EventType.stream_stalled, why)
            except (httpx.HTTPError, hls.HlsError, _Refused, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, _Refused) else str(exc)
            self._silence()
            failures = 1 if self.bytes > before else failures + 1
            self.attempts += 1
            delay = min(self.backoff_min_s * 2 ** (failures - 1), self.backoff_max_s)
            delay *= random.uniform(0.75, 1.0)  # nodes of a village must not reconnect in step
            self._event(
                EventType.stream_reconnecting, f"attempt {failures} in {delay:.1f} s: {why}"
            )
            if failures >= self.dead_after and not self.failed:
                self._fail(failures, why)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        # The token, if this is the controller's own stream, is the client's auth (see
        # `Sounds.stream_http`): a station's server never sees it.
        headers = {"Icy-MetaData": "0"}
        reader = FrameReader()
        if self.ref.format == StreamFormat.hls:
            first = True
            async for data in hls.follow(self.http, self.ref.url, headers):
                if first:
                    self._connected("application/vnd.apple.mpegurl")
                    first = False
                self._take(reader, data)
            return
        timeout = httpx.Timeout(
            connect=self.connect_timeout_s, read=self.stall_s, write=5.0, pool=5.0
        )
        async with self.http.stream(
            "GET", self.ref.url, headers=headers, timeout=timeout, follow_redirects=True
        ) as resp:
            if resp.status_code == 410 and self.ref.live:
                raise _Gone
            if resp.status_code != 200:
                raise _Refused(f"HTTP {resp.status_code} from {self.ref.url[:200]}")
            self._connected(resp.headers.get("content-type", "?"))
            async for chunk in resp.aiter_raw():
                self._take(reader, chunk)

    def _connected(self, content_type: str) -> None:
        self.connects += 1
        recovered = self.failed
        self.failed = False
        if self._fallback is not None:
            self._fallback.stop()
            self._fallback = None
        self._window = (asyncio.get_running_loop().time(), 0)
        detail = content_type[:100] + ("; recovered: the stream replaces the fallback" * recovered)
        self._event(EventType.stream_connected, detail)

    def _take(self, reader: FrameReader, data: bytes) -> None:
        self.bytes += len(data)
        heard = reader.audio_ms
        frames = reader.feed(data)
        if frames:
            self.frames += len(frames)
            self.audio_ms += reader.audio_ms - heard
            if self._sink is None:
                adts = (frames[0][1] >> 1) & 3 == 0
                fmt = StreamFormat.aac if adts else StreamFormat.mp3
                self._sink = self.player.open_stream(fmt, self.volume)
            self._sink.feed(frames)
        started, counted = self._window
        counted += len(data)
        now = asyncio.get_running_loop().time()
        if now - started >= self.bitrate_every_s:
            self.kbps = counted * 8 / (now - started) / 1000
            nominal = f", nominal {reader.bitrate_kbps} kb/s" if reader.bitrate_kbps else ""
            self._event(
                EventType.stream_bitrate,
                f"{self.kbps:.1f} kb/s{nominal}; {self.frames} frames, {self.bytes} bytes",
            )
            started, counted = now, 0
        self._window = (started, counted)

    def _fail(self, failures: int, why: str) -> None:
        self.failed = True
        ready, path = self.fallback() if self.ref.fallback else (False, None)
        if ready:
            self.fell_back += 1
            self._fallback = self.player.play_file(path, self.volume)
            then = f"playing the fallback recording {self.item.media.sha256[:12]}"
        elif self.ref.fallback:
            then = "the fallback recording is not here yet: silence"
        else:
            then = "no fallback recording: silence"
        log.warning("stream %s dead: %s; %s", self.ref.url[:100], why, then)
        self._event(
            EventType.stream_failed, f"source dead after {failures} attempts ({why}); {then}"
        )

    def _silence(self) -> None:
        if self._sink is not None:
            self._sink.stop()
            self._sink = None

    def _end(self, detail: str) -> None:
        self._silence()
        self.detail = detail
        self.ended.set()
