"""The controller's copies of stations that nodes cannot reach (`via_controller` entries).

A copy starts when the first node asks for it: the controller's own HTTP client reads the
station (MP3 or AAC; HLS playlists are followed segment by segment) and one ffmpeg encodes what
it reads, on its input, once to the MP3 every node can decode, into a hub that serves every
node. It stops when no node has listened for `idle_s`, or when the station stops answering; the
next node to ask starts it again. Only stations written in playlists are pulled, only at
addresses the administrator allows (`controller/core/station_hosts.py`: checked after resolution,
on every redirect and segment), and only decoded audio comes out: the relay is no open proxy.
What went wrong reaches the caller as a code only (`stream_unreachable`, `stream_not_audio`,
`stream_host_not_allowed`); the station's or ffmpeg's own words go to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
from sqlmodel import Session

from controller.core.errors import NotFound, Unavailable
from controller.core.models import PlaylistItem
from controller.core.periodic import Periodic
from controller.core.station_hosts import StationPolicy, StationRefused, station_client
from controller.live.live_encoder import Encoder
from controller.live.stream_hub import StreamHub
from protocol import StreamFormat
from protocol.hls import HlsError, follow

log = logging.getLogger(__name__)

UNREACHABLE = "stream_unreachable"
NOT_AUDIO = "stream_not_audio"
HOST_NOT_ALLOWED = "stream_host_not_allowed"
SAYS = {
    UNREACHABLE: "the relayed station cannot be reached",
    NOT_AUDIO: "the relayed station does not send audio",
    HOST_NOT_ALLOWED: "the relayed station is not at an address the administrator allows",
}
# Answers that are certainly no audio stream (a web page, an API's error).
NOT_AUDIO_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")


class StreamFailed(Unavailable):
    """A relay that cannot serve, told by its code only."""

    def __init__(self, code: str) -> None:
        super().__init__(SAYS[code])
        self.code = code


class NotAudio(Exception):
    pass


class RelaySource:
    retries = 3  # a station that drops after sending audio is read again this many times

    def __init__(
        self, entry_id: int, url: str, fmt: str | None, kbps: int, stations: StationPolicy
    ) -> None:
        self.entry_id = entry_id
        self.url = url
        self.hls = fmt == StreamFormat.hls.value
        self.stations = stations
        self.hub = StreamHub(f"relay-{entry_id}")
        self.encoder = Encoder.for_station(self.hub, kbps, f"relay {entry_id}")
        self.idle_since = time.monotonic()
        self.failure: str | None = None  # why reading the station stopped, as a code
        self._pull: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def dead(self) -> bool:
        return self.hub.closed

    async def start(self) -> None:
        await self.encoder.start(with_input=True)
        self._pull = asyncio.create_task(self._read_station(), name=f"relay-{self.entry_id}-in")
        self._watch = asyncio.create_task(self._end_with_encoder(), name=f"relay-{self.entry_id}")

    async def _end_with_encoder(self) -> None:
        await self.encoder.finished()
        if self._pull is not None:
            self._pull.cancel()
        self.hub.close()  # the station is gone: nodes reconnect, and may start a new copy

    async def _read_station(self) -> None:
        failures = 0
        try:
            async with station_client(self.stations) as http:
                while self.encoder.running:
                    before = self.encoder.bytes_in
                    try:
                        await self._read_once(http)
                        why = "the station ended its stream"
                    except StationRefused as exc:
                        self._fail(HOST_NOT_ALLOWED, str(exc))
                        return
                    except NotAudio as exc:
                        self._fail(NOT_AUDIO, str(exc))
                        return
                    except (httpx.HTTPError, HlsError, OSError, ValueError) as exc:
                        # ValueError: a malformed playlist or header; all of it goes to the log
                        why = f"{type(exc).__name__}: {exc}"
                    if not self.encoder.running:
                        return
                    failures = 0 if self.encoder.bytes_in > before else failures + 1
                    if not self.encoder.bytes_in or failures > self.retries:
                        self._fail(UNREACHABLE, why)
                        return
                    log.info("relay %d: %s; reading it again", self.entry_id, why[:300])
                    await asyncio.sleep(min(4.0, 0.5 * 2**failures))
        finally:
            self.encoder.end_input()

    def _fail(self, code: str, why: str) -> None:
        self.failure = code
        log.warning("relay %d of %s: %s (%s)", self.entry_id, self.url[:120], why[:300], code)

    async def _read_once(self, http: httpx.AsyncClient) -> None:
        if not self.hls:
            async with http.stream("GET", self.url) as resp:
                if resp.status_code != 200:
                    raise httpx.HTTPStatusError(
                        f"HTTP {resp.status_code}", request=resp.request, response=resp
                    )
                kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind.startswith(NOT_AUDIO_TYPES):
                    raise NotAudio(f"the station answered {kind}")
                if "mpegurl" not in kind:
                    async for chunk in resp.aiter_bytes():
                        if not await self._feed(chunk):
                            return
                    return
            self.hls = True  # an HLS playlist behind an address without .m3u8
        try:
            async for audio in follow(http, self.url, {}):
                if not await self._feed(audio):
                    return
        except HlsError as exc:
            if str(exc).startswith("not an HLS playlist"):
                raise NotAudio(str(exc)) from exc
            raise

    async def _feed(self, data: bytes) -> bool:
        """Into ffmpeg; False once it has stopped taking input."""
        if not self.encoder.running:
            return False
        await self.encoder.write(data)
        return self.encoder.running

    def why_dead(self) -> str:
        """The code a caller is told (never the station's or ffmpeg's words)."""
        if self.failure is not None:
            return self.failure
        return NOT_AUDIO if self.encoder.bytes_in else UNREACHABLE

    async def close(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pull
        await self.encoder.close(timeout_s=1.0)
        self.hub.close()


class Relays:
    """Relay copies by playlist entry id."""

    first_audio_s = 10.0  # how long a node's request waits for the station's first audio
    idle_s = 15.0

    def __init__(self, kbps: int, stations: StationPolicy) -> None:
        self.kbps = kbps
        self.stations = stations
        self.sources: dict[int, RelaySource] = {}
        self._lock = asyncio.Lock()

    async def hub_for(self, session: Session, entry_id: int) -> StreamHub:
        """The running copy of the entry's station (started if need be), once audio flows.

        The request's session is closed once the entry is read: a node holds its request for
        as long as it listens, and must not hold a database connection all that time (the
        pool has a few, and the next request would wait for one with the event loop held)."""
        row = session.get(PlaylistItem, entry_id)
        url = row.stream_url if row is not None else None
        fmt = row.stream_format if row is not None else None
        ok = row is not None and row.kind == "stream" and row.via_controller
        session.close()
        if not ok or not url:
            raise NotFound(f"no relayed stream {entry_id}")
        async with self._lock:
            source = self.sources.get(entry_id)
            if source is None or source.dead:
                source = RelaySource(entry_id, url, fmt, self.kbps, self.stations)
                await source.start()
                self.sources[entry_id] = source
                log.info("relay %d: pulling %s", entry_id, url[:120])
        try:
            await asyncio.wait_for(source.hub.started.wait(), self.first_audio_s)
        except TimeoutError:
            pass
        if source.dead or not source.hub.frames:
            raise StreamFailed(source.why_dead())
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
