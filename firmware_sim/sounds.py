"""What an item sounds like on this node's player: its cached recording, a tone, or its stream."""

from __future__ import annotations

import asyncio
from io import BufferedReader
from pathlib import Path

import httpx

from firmware_sim.health import NodeHealth
from firmware_sim.media import MediaCache
from firmware_sim.media_token import MediaToken
from firmware_sim.outbox import Emit
from firmware_sim.player import Player, Sound, StreamSink
from firmware_sim.stream import MediaStream
from firmware_sim.stream_run import StreamRun
from protocol import MediaRef, StreamFormat, TimelineItem
from protocol.audio_frames import FrameReader

TEST_TONE_HZ = 1000


class Sounding:
    """A recording or a tone: it lasts as long as `Playback` lets it (the item's duration)."""

    def __init__(self, sound: Sound) -> None:
        self.sound = sound
        self.ended = asyncio.Event()  # never set: only a live stream ends its item early
        self.detail = ""

    def stop(self) -> None:
        self.sound.stop()


class Sounds:
    """Starts sounds on the player; keeps every stream run so that tests and logs can see what
    each stream delivered (bytes, frames, reconnects, fallbacks)."""

    def __init__(
        self,
        player: Player,
        media: MediaCache,
        emit: Emit,
        token: MediaToken,
        health: NodeHealth,
    ) -> None:
        self.player = player
        self.media = media
        self.emit = emit
        self.token = token
        self.health = health
        self.streams: list[StreamRun] = []
        self._stream_http: dict[bool, httpx.AsyncClient] = {}

    def stream_http(self, auth: bool) -> httpx.AsyncClient:
        """A client of the node's own for streams: a stream holds its connection for as long as
        it plays, so it must not take one of the pool a simulated fleet shares for media.

        For the controller's own streams (`auth`), the client carries the media token as its
        auth, which adds it to requests to the controller's address only (a redirect elsewhere
        drops it); other streams' client never has it."""
        client = self._stream_http.get(auth)
        if client is None:
            client = self._stream_http[auth] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=4), auth=self.token if auth else None
            )
        return client

    def path(self, sha256: str) -> Path | None:
        if self.media.dir is None:
            return None
        path = self.media.dir / sha256
        return path if path.is_file() else None

    def volume_for(self, item: TimelineItem | None) -> int:
        if self.health.alert_volume is not None:
            return self.health.alert_volume
        if item is not None and item.volume is not None:
            return item.volume
        return self.health.volume

    def start(self, item: TimelineItem, version: int | None) -> Sounding | StreamRun:
        def volume() -> int:
            return self.volume_for(item)

        if item.stream is not None:
            sha = item.media.sha256
            run = StreamRun(
                item,
                version,
                self.player,
                self.stream_http(item.stream.auth),
                self.emit,
                volume,
                lambda: (self.media.is_ready(sha), self.path(sha)),
            )
            self.streams = [*self.streams[-49:], run]
            return run
        if item.item_id == "test_tone":
            return Sounding(self.player.play_tone(TEST_TONE_HZ, volume))
        return Sounding(self.player.play_file(self.path(item.media.sha256), volume))

    def alert(self, ref: MediaRef, stream: MediaStream | None) -> Sound:
        """An alert's media: from the cache, or — still downloading — from the bytes so far,
        following the download as it grows (sound starts on the first bytes)."""

        def volume() -> int:
            return self.volume_for(None)

        path = self.path(ref.sha256)
        if path is not None or stream is None or self.media.dir is None:
            return self.player.play_file(path, volume)
        part = self.media.dir / f"{ref.sha256}.alert.part"
        sink = self.player.open_stream(StreamFormat.mp3, volume)
        return _Following(sink, asyncio.create_task(_follow(part, stream, sink)))

    async def aclose(self) -> None:
        for run in self.streams:
            run.stop()
        self.player.close()
        for client in self._stream_http.values():
            await client.aclose()
        self._stream_http.clear()


class _Following:
    def __init__(self, sink: StreamSink, task: asyncio.Task[None]) -> None:
        self.sink = sink
        self.task = task

    def stop(self) -> None:
        self.task.cancel()
        self.sink.stop()


class _Tail:
    """A file being written: what has been added since the last read. The open file survives
    the download's rename to its final name."""

    def __init__(self, part: Path) -> None:
        final = part.with_name(part.name.removesuffix(".alert.part"))
        self.fh: BufferedReader | None
        try:
            self.fh = part.open("rb")
        except FileNotFoundError:  # the download finished (and was renamed) meanwhile
            self.fh = final.open("rb") if final.is_file() else None

    def read(self) -> bytes:
        return self.fh.read(65536) if self.fh is not None else b""

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


async def _follow(part: Path, stream: MediaStream, sink: StreamSink) -> None:
    """Feed a download's bytes to the player as they reach the disk, until it has ended."""
    reader = FrameReader()
    tail = _Tail(part)  # the download has started: the alert waits for its first bytes
    try:
        while True:
            ended = stream.ended.is_set()
            data = tail.read()
            if data:
                sink.feed(reader.feed(data))
            elif ended:
                return
            else:
                await asyncio.sleep(0.02)
    finally:
        tail.close()
