"""The controller's copies of stations that nodes cannot reach (`via_controller` entries).

A copy starts when the first node asks for it: one ffmpeg pulls the station (MP3, AAC or HLS;
it reconnects by itself) and encodes it once to the MP3 every node can decode, into a hub that
serves every node. It stops when no node has listened for `idle_s`, or when the station stops
answering; the next node to ask starts it again. Only stations written in playlists are
pulled, and only decoded audio comes out, so the relay is no open proxy.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlmodel import Session

from controller.core.errors import NotFound, Unavailable
from controller.core.models import PlaylistItem
from controller.core.periodic import Periodic
from controller.live.live_encoder import Encoder
from controller.live.stream_hub import StreamHub

log = logging.getLogger(__name__)


class RelaySource:
    def __init__(self, entry_id: int, url: str, kbps: int) -> None:
        self.entry_id = entry_id
        self.url = url
        self.hub = StreamHub(f"relay-{entry_id}")
        self.encoder = Encoder.for_url(self.hub, url, kbps)
        self.idle_since = time.monotonic()
        self._watch: asyncio.Task[None] | None = None

    @property
    def dead(self) -> bool:
        return self.hub.closed

    async def start(self) -> None:
        await self.encoder.start(with_input=False)
        self._watch = asyncio.create_task(self._end_with_encoder(), name=f"relay-{self.entry_id}")

    async def _end_with_encoder(self) -> None:
        await self.encoder.finished()
        self.hub.close()  # the station is gone: nodes reconnect, and may start a new copy

    def why_dead(self) -> str:
        tail = self.encoder.stderr.decode(errors="replace").strip().splitlines()
        return tail[-1][:300] if tail else "the station sent no audio"

    async def close(self) -> None:
        await self.encoder.close(timeout_s=1.0)
        self.hub.close()


class Relays:
    """Relay copies by playlist entry id."""

    first_audio_s = 10.0  # how long a node's request waits for the station's first audio
    idle_s = 15.0

    def __init__(self, kbps: int) -> None:
        self.kbps = kbps
        self.sources: dict[int, RelaySource] = {}
        self._lock = asyncio.Lock()

    async def hub_for(self, session: Session, entry_id: int) -> StreamHub:
        """The running copy of the entry's station (started if need be), once audio flows.

        The request's session is closed once the entry is read: a node holds its request for
        as long as it listens, and must not hold a database connection all that time (the
        pool has a few, and the next request would wait for one with the event loop held)."""
        row = session.get(PlaylistItem, entry_id)
        url = row.stream_url if row is not None else None
        ok = row is not None and row.kind == "stream" and row.via_controller
        session.close()
        if not ok or not url:
            raise NotFound(f"no relayed stream {entry_id}")
        async with self._lock:
            source = self.sources.get(entry_id)
            if source is None or source.dead:
                source = RelaySource(entry_id, url, self.kbps)
                await source.start()
                self.sources[entry_id] = source
                log.info("relay %d: pulling %s", entry_id, url[:120])
        try:
            await asyncio.wait_for(source.hub.started.wait(), self.first_audio_s)
        except TimeoutError:
            pass
        if source.dead or not source.hub.frames:
            raise Unavailable(f"the relayed station does not answer: {source.why_dead()}")
        return source.hub

    async def run_idle(self) -> None:
        """Stop copies nobody listens to."""
        await Periodic("idle relay sweep", 1.0, self.stop_idle, jitter=0).run()

    async def stop_idle(self) -> None:
        now = time.monotonic()
        for entry_id, source in list(self.sources.items()):
            if source.hub.listeners:
                source.idle_since = now
            elif source.dead or now - source.idle_since > self.idle_s:
                del self.sources[entry_id]
                await source.close()
                log.info("relay %d stopped (no listener)", entry_id)

    async def close(self) -> None:
        for source in self.sources.values():
            await source.close()
        self.sources.clear()
