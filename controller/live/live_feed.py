"""The sound of one live broadcast: its stream, the source connected now, silence while none is.

A source is one connection (the browser's WebSocket, `radio live`) with its own ffmpeg, because
a container such as WebM cannot be continued by a second one; the stream (`hub`) outlives
them, so nodes stay connected while the officer's browser reconnects, hearing silence.
"""

from __future__ import annotations

import asyncio
import time

from controller.core.errors import Conflict
from controller.live.live_encoder import RATE, Encoder
from controller.live.stream_hub import StreamHub

FRAME_S = 1152 / RATE


class LiveFeed:
    fill_after_s = 0.5  # no audio from the source for this long: silence goes out instead

    def __init__(self, live_id: str, kbps: int, silence: list[bytes]) -> None:
        self.live_id = live_id
        self.kbps = kbps
        self.hub = StreamHub(f"live-{live_id}")
        self.encoder: Encoder | None = None
        self.silence = silence
        self.filled = 0  # silence frames sent
        self.absent_since: float | None = time.monotonic()  # no source connected since
        self._filler = asyncio.create_task(self._fill(), name=f"live-fill-{live_id}")

    def absent_s(self) -> float:
        """How long no source has been connected (0 while one is)."""
        return 0.0 if self.absent_since is None else time.monotonic() - self.absent_since

    @property
    def bytes_in(self) -> int:
        return self.encoder.bytes_in if self.encoder is not None else 0

    async def attach(self, fmt: str, rate: int, channels: int) -> Encoder:
        if self.encoder is not None and self.encoder.running:
            raise Conflict("another source is sending this live broadcast's audio: stop it first")
        encoder = Encoder.for_source(self.hub, fmt, rate, channels, self.kbps)
        await encoder.start(with_input=True)
        self.encoder = encoder
        self.absent_since = None
        return encoder

    async def detach(self, encoder: Encoder) -> None:
        await encoder.close()
        if self.encoder is encoder:
            self.encoder = None
            self.absent_since = time.monotonic()

    async def close(self) -> None:
        """Flush the source's last words, then end the stream for every node."""
        if self.encoder is not None:
            await self.detach(self.encoder)
        self._filler.cancel()
        self.hub.close()

    async def _fill(self) -> None:
        owed, last, heard = 0.0, time.monotonic(), -1
        while not self.hub.closed:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            elapsed, last = now - last, now
            real = self.hub.frames - self.filled
            if real != heard:
                heard, quiet_since, owed = real, now, 0.0
            if now - quiet_since < self.fill_after_s or not self.silence:
                continue
            owed += elapsed
            count = int(owed / FRAME_S)
            owed -= count * FRAME_S
            for _ in range(count):
                self.hub.publish(self.silence[self.filled % len(self.silence)])
                self.filled += 1
