"""Media downloads: fetch once per sha256, verify size and hash, retry until the item is due.

The bytes come through the node's one download function (`firmware_sim.download`)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.download import CHUNK, Downloader, DownloadError
from firmware_sim.media_token import MediaToken
from firmware_sim.outbox import Emit
from protocol import Clock, EventType, MediaRef, TimelineItem

log = logging.getLogger(__name__)


_SLOTS: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _prefetch_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _SLOTS:
        _SLOTS[loop] = asyncio.Semaphore(4)
    return _SLOTS[loop]


class MediaError(Exception):
    """A download that cannot be used; the message becomes the event detail."""


@dataclass
class _Download:
    items: list[TimelineItem]
    version: int
    task: asyncio.Task[None] | None = None
    attempts: int = field(default=0)


class MediaCache:
    """Which media this node holds, verified. Several items sharing a sha256 share a download.

    Without a cache directory only the verified hash and size are kept: a simulated node has
    no loudspeaker, so the bytes are checked and thrown away.
    """

    retry_base_s = 1.0
    retry_max_s = 60.0
    prefetch_spread_s = 30.0
    # Downloads at once: a timeline of 2,000 items each with its own audio must not open 2,000
    # requests together (the node's loop spent seconds queueing them, and commands and alerts
    # waited behind). They start in the timeline's order, so the first items come first.
    downloads_at_once = 4

    def __init__(
        self,
        downloader: Downloader,
        emit: Emit,
        clock: Clock,
        cache_dir: Path | None = None,
    ) -> None:
        self.downloader = downloader
        self.emit = emit
        self.clock = clock
        self.dir = cache_dir / "media" if cache_dir is not None else None
        self.verified: dict[str, int] = {}
        self._downloads: dict[str, _Download] = {}
        self._announced: set[tuple[str, str]] = set()
        self._prefetching: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(self.downloads_at_once)
        self.corrupt = False  # a fault scenario: downloads arrive damaged and fail their check

    @property
    def credential(self) -> MediaToken:
        """The node's media token, which downloads renew when due."""
        return self.downloader.token

    @property
    def token(self) -> str:
        """The media token as it is now (renewed by downloads when due)."""
        return self.downloader.token.value

    @property
    def prefetching(self) -> int:
        """Media asked for in advance and not held yet."""
        return sum(not t.done() for t in self._prefetching.values())

    def is_ready(self, sha256: str) -> bool:
        return sha256 in self.verified

    async def from_cache(self, ref: MediaRef) -> bool:
        """Whether a verified copy is held, looking in the disk cache when memory has none."""
        if ref.sha256 in self.verified:
            return True
        size = await self._from_disk(ref)
        if size:
            self.verified[ref.sha256] = size
        return bool(size)

    def put(self, ref: MediaRef, data: bytes) -> None:
        """Hold media that arrived whole (inside an alert), once its size and hash match."""
        if ref.sha256 in self.verified:
            return
        digest = hashlib.sha256(data)
        if self.corrupt:
            digest.update(b"\x00")  # a flipped byte on the way
        _check(ref, len(data), digest.hexdigest())
        if self.dir is not None:
            path = self.dir / ref.sha256
            tmp = self.dir / f"{ref.sha256}.inline"
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                if not path.is_file():
                    tmp.write_bytes(data)
                    tmp.replace(path)
            except OSError as exc:  # a full card: the download path will say so too
                tmp.unlink(missing_ok=True)
                raise MediaError(f"cannot keep it: {exc}") from None
        self.verified[ref.sha256] = ref.size

    def want(self, items: list[TimelineItem], version: int) -> None:
        """Make sure media of `items` (those that may still play) is, or becomes, ready."""
        by_sha: dict[str, list[TimelineItem]] = {}
        for item in items:
            by_sha.setdefault(item.media.sha256, []).append(item)
        for sha, old in list(self._downloads.items()):
            if sha not in by_sha and old.task is not None:
                old.task.cancel()
                del self._downloads[sha]
        # The earliest first: downloads start in this order, a few at a time.
        for sha, wanted in sorted(by_sha.items(), key=lambda kv: min(i.start for i in kv[1])):
            if sha in self.verified:
                self._announce(sha, wanted, version)
                continue
            current = self._downloads.get(sha)
            if current is not None and current.task is not None and not current.task.done():
                current.items, current.version = wanted, version
                continue
            download = _Download(items=wanted, version=version)
            download.task = asyncio.create_task(self._run(sha, download), name=f"media-{sha[:8]}")
            self._downloads[sha] = download
        # Remembered only while an item may still play: a node runs for months.
        self._announced &= {(item.item_id, item.media.sha256) for item in items}

    def prefetch(self, refs: list[MediaRef]) -> None:
        """Fetch media that may be needed at no notice (alert templates), once, quietly."""
        for ref in refs:
            if ref.sha256 in self.verified or ref.sha256 in self._prefetching:
                continue
            task = asyncio.create_task(self._prefetch_one(ref), name=f"prefetch-{ref.sha256[:8]}")
            self._prefetching[ref.sha256] = task

    async def _prefetch_one(self, ref: MediaRef) -> None:
        # Spread the first attempts: a whole village booting must not hit the server at once.
        await asyncio.sleep(random.uniform(0, self.prefetch_spread_s))
        delay = self.retry_base_s
        while ref.sha256 not in self.verified:
            try:
                # Few prefetches at a time per process, so they never starve the downloads that
                # matter now (an alert's media, the next item) of connections or CPU.
                async with _prefetch_slots():
                    size = await self._from_disk(ref) or await self._fetch(ref)
                self.verified[ref.sha256] = size
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried later; prefetching never disturbs the node
                log.info("prefetch of %s failed: %s", ref.sha256[:12], exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def close(self) -> None:
        for task in self._prefetching.values():
            task.cancel()
        self._prefetching.clear()
        for download in self._downloads.values():
            if download.task is not None:
                download.task.cancel()
        self._downloads.clear()

    def _announce(self, sha: str, items: list[TimelineItem], version: int) -> None:
        for item in items:
            key = (item.item_id, sha)
            if key not in self._announced:
                self._announced.add(key)
                self.emit(
                    EventType.media_ready,
                    item_id=item.item_id,
                    broadcast_id=item.broadcast_id,
                    timeline_version=version,
                    sha256=sha,
                )

    async def _run(self, sha: str, download: _Download) -> None:
        while True:
            first = min(download.items, key=lambda i: i.start)
            try:
                size = await self._from_disk(first.media)
                if not size:
                    async with self._slots:
                        size = await self._fetch(first.media)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure is a reason to retry, never to crash
                known = isinstance(exc, MediaError | DownloadError)
                detail = str(exc) if known else f"{type(exc).__name__}: {exc}"
                download.attempts += 1
                log.warning("media %s attempt %d failed: %s", sha[:12], download.attempts, detail)
                self.emit(
                    EventType.media_failed,
                    item_id=first.item_id,
                    broadcast_id=first.broadcast_id,
                    timeline_version=download.version,
                    sha256=sha,
                    detail=f"attempt {download.attempts}: {detail}"[:500],
                )
                if self.clock.now_ms() >= max(i.start for i in download.items):
                    log.warning("media %s: giving up, every item using it is due", sha[:12])
                    return
                delay = min(self.retry_base_s * 2 ** (download.attempts - 1), self.retry_max_s)
                await asyncio.sleep(delay)
                continue
            self.verified[sha] = size
            self._announce(sha, download.items, download.version)
            return

    async def _from_disk(self, ref: MediaRef) -> int:
        """Size of a verified cached copy, or 0 when there is none to trust."""
        if self.dir is None:
            return 0
        path = self.dir / ref.sha256
        if not path.is_file():
            return 0
        digest, size = await asyncio.to_thread(_hash_file, path)
        if digest == ref.sha256 and size == ref.size:
            return size
        path.unlink(missing_ok=True)  # corrupted on disk: fetch it again
        return 0

    async def _fetch(self, ref: MediaRef) -> int:
        dest = self.dir / ref.sha256 if self.dir is not None else None
        fetched = await self.downloader.fetch(
            ref.url,
            max_bytes=ref.size,
            exact=True,
            sha256=ref.sha256,
            dest=dest,
            mangle=_damaged if self.corrupt else None,
        )
        return fetched.size


def _damaged(chunk: bytes) -> bytes:
    """A flipped byte on the way (the `media_corrupt` fault)."""
    return bytes([chunk[0] ^ 0xFF]) + chunk[1:] if chunk else chunk


def _check(ref: MediaRef, size: int, digest: str) -> None:
    """Media is what its (signed) reference says, or a MediaError saying how it differs."""
    if size != ref.size:
        raise MediaError(f"size {size} != declared {ref.size}")
    if digest != ref.sha256:
        raise MediaError(f"sha256 mismatch: got {digest}")


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
