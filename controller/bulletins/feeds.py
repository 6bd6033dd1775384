"""Following an upper level's RSS or Atom feed: each new entry with an audio enclosure becomes
a bulletin, as if its system had pushed it.

Polite and safe: conditional requests (ETag, Last-Modified: an unchanged feed answers 304 and
costs a few bytes); every address checked against the station allow-list
(`controller/core/station_hosts.py`: no probing of the controller's own network, redirects
checked too); the feed and each recording capped and counted as the bytes arrive; an entry is
taken once, known by its id and by its enclosure's address. A feed with nothing new for longer
than its `silent_after_s` is marked silent (recorded in the audit record and shown with the
feed) until an entry comes again.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
from sqlmodel import col, select

from controller.auth.audit import record
from controller.auth.service_accounts import as_aware
from controller.bulletins.bulletins import BulletinDesk, BulletinIn
from controller.core.errors import DomainError
from controller.core.models import BulletinFeed, BulletinFeedEntry
from controller.core.station_hosts import StationPolicy, StationRefused, station_client
from controller.core.time import utc_datetime
from protocol import Priority
from protocol.clock import Clock

log = logging.getLogger(__name__)

# Entries (newest first, as feeds list them) taken at the first read of a feed.
FIRST_READ_TAKES = 1
AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav")


class TooLarge(Exception):
    pass


class NotAFeed(Exception):
    pass


@dataclass
class PollResult:
    status: str
    new: int = 0


def audio_enclosure(entry: Any) -> str | None:
    """The address of the entry's first audio enclosure (by type, else by file name)."""
    for link in entry.get("enclosures", []) or []:
        href = str(link.get("href", ""))
        kind = str(link.get("type", "")).lower()
        if href and (
            kind.startswith("audio/") or href.lower().split("?")[0].endswith(AUDIO_SUFFIXES)
        ):
            return href
    return None


async def read_capped(response: httpx.Response, limit: int, out: Any = None) -> bytes:
    """The body, refused once it passes `limit` bytes (a declared length is checked first)."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{declared} bytes announced, limit {limit}")
    got = 0
    chunks: list[bytes] = []
    async for chunk in response.aiter_bytes():
        got += len(chunk)
        if got > limit:
            raise TooLarge(f"more than {limit} bytes")
        if out is not None:
            out.write(chunk)
        else:
            chunks.append(chunk)
    return b"".join(chunks)


class FeedFollower:
    def __init__(
        self,
        desk: BulletinDesk,
        policy: StationPolicy,
        clock: Clock,
        media_root: Path,
        feed_max_bytes: int,
        audio_max_bytes: int,
    ) -> None:
        self.desk = desk
        self.db = desk.db
        self.policy = policy
        self.clock = clock
        self.media_root = media_root
        self.feed_max_bytes = feed_max_bytes
        self.audio_max_bytes = audio_max_bytes

    def now(self) -> datetime:
        return utc_datetime(self.clock.now_ms())

    async def poll_all(self) -> dict[str, PollResult]:
        """One round over every active feed (the periodic job's run)."""
        with self.db.session() as session:
            ids = session.exec(
                select(BulletinFeed.id).where(col(BulletinFeed.active).is_(True))
            ).all()
        results = {}
        for feed_id in ids:
            assert feed_id is not None
            try:
                results[str(feed_id)] = await self.poll(feed_id)
            except Exception:  # one broken feed must not stop the others
                log.exception("bulletin feed %s failed", feed_id)
                results[str(feed_id)] = PollResult("error")
        return results

    async def poll(self, feed_id: int) -> PollResult:
        with self.db.session() as session:
            feed = session.get(BulletinFeed, feed_id)
            assert feed is not None
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        new = 0
        async with station_client(self.policy) as client:
            try:
                async with client.stream("GET", feed.url, headers=headers) as response:
                    if response.status_code == 304:
                        result = PollResult("not modified")
                    elif response.status_code != 200:
                        result = PollResult(f"HTTP {response.status_code}")
                    else:
                        body = await read_capped(response, self.feed_max_bytes)
                        new = await self._take_entries(client, feed, body)
                        result = PollResult("ok", new)
                        feed.etag = response.headers.get("etag", "")[:300]
                        feed.last_modified = response.headers.get("last-modified", "")[:100]
            # What officers see says what went wrong, never where a name led (an address
            # inside the network, a name that does not resolve): the log has the details.
            except StationRefused as exc:
                log.info("bulletin feed %s refused: %s", feed_id, exc)
                result = PollResult("refused: not a public address allowed for feeds")
            except TooLarge as exc:
                result = PollResult(f"feed too large: {exc}"[:300])
            except NotAFeed as exc:
                result = PollResult(str(exc)[:300])
            except httpx.HTTPError as exc:
                log.info("bulletin feed %s unreachable: %s %s", feed_id, type(exc).__name__, exc)
                result = PollResult(f"unreachable: {type(exc).__name__}")
        self._record_poll(feed_id, feed.etag, feed.last_modified, result)
        return result

    async def _take_entries(
        self, client: httpx.AsyncClient, feed: BulletinFeed, body: bytes
    ) -> int:
        assert feed.id is not None
        # A stream, never bytes or text: feedparser opens a URL or a local file named by them.
        parsed = feedparser.parse(io.BytesIO(body))
        if parsed.get("bozo") and not parsed.get("entries"):
            raise NotAFeed(f"not an RSS or Atom feed: {parsed.get('bozo_exception')}"[:200])
        taken = 0
        entries = list(parsed.get("entries", []))
        # A feed followed for the first time brings its newest entry, not its whole archive:
        # the older ones are noted as seen.
        first_read = not self._seen_any(feed.id)
        # Oldest first, so bulletins arrive in the order they were published.
        for index in reversed(range(len(entries))):
            entry = entries[index]
            audio = audio_enclosure(entry)
            entry_id = str(entry.get("id") or entry.get("link") or audio or "")[:300]
            keys = [k[:300] for k in dict.fromkeys(filter(None, [entry_id, audio]))]
            if not keys or self._seen(feed.id, keys):
                continue
            if first_read and index >= FIRST_READ_TAKES:
                outcome, bulletin_id = "published before the feed was followed", None
            else:
                outcome, bulletin_id = await self._bulletin(client, feed, entry, entry_id, audio)
            with self.db.session() as session:
                for key in keys:
                    session.add(
                        BulletinFeedEntry(
                            feed_id=feed.id,
                            entry_key=key,
                            bulletin_id=bulletin_id,
                            outcome=outcome[:300],
                            seen_at=self.now(),
                        )
                    )
                session.commit()
            if bulletin_id is not None:
                taken += 1
        return taken

    def _seen_any(self, feed_id: int) -> bool:
        with self.db.session() as session:
            return (
                session.exec(
                    select(BulletinFeedEntry.id).where(BulletinFeedEntry.feed_id == feed_id)
                ).first()
                is not None
            )

    def _seen(self, feed_id: int, keys: list[str]) -> bool:
        with self.db.session() as session:
            return (
                session.exec(
                    select(BulletinFeedEntry.id).where(
                        BulletinFeedEntry.feed_id == feed_id,
                        col(BulletinFeedEntry.entry_key).in_(keys),
                    )
                ).first()
                is not None
            )

    async def _bulletin(
        self,
        client: httpx.AsyncClient,
        feed: BulletinFeed,
        entry: Any,
        entry_id: str,
        audio: str | None,
    ) -> tuple[str, int | None]:
        if audio is None:
            return "no audio enclosure", None
        data = BulletinIn(
            external_id=entry_id or audio,
            title=str(entry.get("title") or feed.name)[:200],
            category=feed.category,
            areas=json.loads(feed.areas),
            priority=Priority(feed.priority),
        )
        with tempfile.TemporaryDirectory(dir=self.media_root) as tmp:
            path = Path(tmp) / "enclosure"
            try:
                async with client.stream("GET", audio) as response:
                    if response.status_code != 200:
                        return f"enclosure: HTTP {response.status_code}", None
                    with path.open("wb") as out:
                        await read_capped(response, self.audio_max_bytes, out)
            except (StationRefused, TooLarge, httpx.HTTPError) as exc:
                # Kept as seen: a refused or oversized recording is not fetched again each poll.
                return f"enclosure refused: {exc}", None
            try:
                received = await self.desk.receive_audio(
                    data, f"feed:{feed.name}", path, audio.rsplit("/", 1)[-1][:150]
                )
            except DomainError as exc:
                return f"refused: {exc}", None
        assert received.bulletin.id is not None
        return "bulletin", received.bulletin.id

    def _record_poll(self, feed_id: int, etag: str, modified: str, result: PollResult) -> None:
        now = self.now()
        with self.db.session() as session:
            feed = session.get(BulletinFeed, feed_id)
            assert feed is not None
            feed.etag, feed.last_modified = etag, modified
            feed.last_polled_at, feed.last_status = now, result.status[:300]
            if result.new:
                feed.last_new_at = now
            quiet_since = as_aware(feed.last_new_at or feed.created_at)
            silent = now - quiet_since > timedelta(seconds=feed.silent_after_s)
            change = None
            if silent and feed.silent_since is None:
                feed.silent_since, change = now, "feed.silent"
            elif not silent and feed.silent_since is not None:
                feed.silent_since, change = None, "feed.speaks"
            session.add(feed)
            session.commit()
            if change is not None:
                log.warning(
                    "bulletin feed %s: %s (nothing new since %s)", feed.name, change, quiet_since
                )
                record(
                    session,
                    "system",
                    change,
                    f"feed:{feed.name}",
                    {"nothing_new_since": quiet_since.isoformat(), "status": result.status},
                    outcome="alarm" if change == "feed.silent" else "ok",
                )
