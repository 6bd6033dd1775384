"""Alert media fetched progressively: sound may start at the first chunk, trust comes at the end."""

from __future__ import annotations

import asyncio
import logging

from firmware_sim.download import DownloadError, Failure
from firmware_sim.media import MediaCache, MediaError
from protocol import MediaRef

log = logging.getLogger(__name__)


class _Retry(Exception):
    """Nothing usable arrived yet (refused, 5xx, 404 while publishing): try again shortly."""


class MediaStream:
    """One download of alert media, started when the alert is accepted.

    Why progressive: an alert should sound on every node within about a second of the
    controller's publish, and a thousand nodes each waiting for a whole file would take longer.
    So, as an MP3 player does with a web stream, sound may start once the first chunk of the
    HTTP response is here (`started`), and the download goes on while the alert plays. Size and
    sha256 are checked at the end (`ended`); on a mismatch `error` is set and `corrupt` marks
    the hash so the node never plays that media again. Media already verified in the node's
    cache skips the download and starts at once.

    Failures before any byte arrived are retried with back-off for as long as the alert wants
    the media; a failure after sound may have started is final (the audio is already broken).
    """

    retry_base_s = 0.25
    retry_max_s = 5.0

    def __init__(self, media: MediaCache, ref: MediaRef) -> None:
        self.media = media
        self.ref = ref
        self.started = asyncio.Event()
        self.ended = asyncio.Event()
        self.error: str | None = None
        self.last_error = ""
        self.corrupt = False
        self.attempts = 0
        self.received = 0
        self.task = asyncio.create_task(self._run(), name=f"alert-media-{ref.sha256[:8]}")

    @property
    def verified(self) -> bool:
        return self.ended.is_set() and self.error is None

    def close(self) -> None:
        self.task.cancel()

    async def _run(self) -> None:
        try:
            if await self.media.from_cache(self.ref):
                self._end(None)
                return
            while True:
                try:
                    size = await self._fetch()
                except _Retry as exc:
                    self.attempts += 1
                    self.last_error = str(exc)
                    delay = min(self.retry_base_s * 2 ** (self.attempts - 1), self.retry_max_s)
                    log.info(
                        "alert media %s: %s; retry in %.2f s", self.ref.sha256[:12], exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                self.media.verified[self.ref.sha256] = size
                self._end(None)
                return
        except asyncio.CancelledError:
            raise
        except MediaError as exc:
            self._end(str(exc))
        except Exception as exc:  # whatever goes wrong is a failed alert, never a dead node
            self._end(f"{type(exc).__name__}: {exc}")

    def _end(self, error: str | None) -> None:
        self.error = error
        if error is not None:
            log.warning("alert media %s failed: %s", self.ref.sha256[:12], error)
        # A verified copy may start sound at once; a failed one wakes waiters to report it.
        self.started.set()
        self.ended.set()

    async def _fetch(self) -> int:
        ref = self.ref
        self.received = 0
        dest = part = None
        if self.media.dir is not None:
            dest = self.media.dir / ref.sha256
            part = self.media.dir / f"{ref.sha256}.alert.part"  # followed by the player

        def arrived(chunk: bytes) -> None:
            self.received += len(chunk)
            self.started.set()

        try:
            fetched = await self.media.downloader.fetch(
                ref.url,
                max_bytes=ref.size,
                exact=True,
                sha256=ref.sha256,
                dest=dest,
                part=part,
                on_bytes=arrived,
                # No chunk size: httpx would hold bytes back until a whole chunk is full.
                chunk_size=None,
            )
        except DownloadError as exc:
            if exc.kind in _NOT_THESE_BYTES:
                self.corrupt = True
                raise MediaError(str(exc)) from None
            if exc.kind in _RETRIED and self.received == 0:
                raise _Retry(str(exc)) from None
            if exc.kind in _RETRIED:
                raise MediaError(f"interrupted after {self.received} bytes: {exc}") from None
            raise MediaError(str(exc)) from None
        return fetched.size


# The server sent other bytes than the signed reference names: never to be played.
_NOT_THESE_BYTES = frozenset({Failure.too_large, Failure.incomplete, Failure.hash_mismatch})
# Nothing usable came (yet): tried again while the alert wants the media.
_RETRIED = frozenset({Failure.http_status, Failure.timeout, Failure.network})
