"""Playlists: ordered announcements, recordings, chimes and silences, scheduled as one broadcast.

A playlist is content like an announcement (a row of source "playlist"), so a schedule names
either by the same `announcement_id`; its entries are `PlaylistItem` rows. When it plays, the
whole playlist is one block for conflicts and quiet hours, and each audible entry is its own
timeline item, so nodes fetch and report every entry and a cut loses only what follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Announcement, PlaylistItem, Schedule, ScheduleStatus
from controller.core.station_hosts import StationPolicy
from controller.programme.stream_entries import stream_part, stream_row
from protocol import MediaRef
from schedules import Part

PLAYLIST = "playlist"
LIVE = "live"  # a live broadcast: one stream entry, the controller's own stream
WITH_ENTRIES = (PLAYLIST, LIVE)  # content whose entries are PlaylistItem rows
MAX_ITEMS = 200
MAX_TOTAL_MS = 6 * 3600 * 1000  # the longest item a timeline keeps while it plays
SILENCE_MS = (100, 600_000)
ACTIVE = (ScheduleStatus.scheduled, ScheduleStatus.pending)  # schedules that may still air


@dataclass(frozen=True)
class Entry:
    """One requested entry: an announcement by id, a chime, a silence of `duration_ms`, or a
    stream (`url`) relayed for `duration_ms` with an optional fallback `announcement_id`."""

    kind: str
    announcement_id: int | None = None
    duration_ms: int | None = None
    url: str | None = None
    format: str | None = None
    via_controller: bool = False


@dataclass(frozen=True)
class Chime:
    sha256: str
    size: int
    duration_ms: int


def check_entries(
    session: Session,
    entries: list[Entry],
    chime: Chime,
    visible: Callable[[Announcement], bool],
    stations: StationPolicy,
) -> list[PlaylistItem]:
    """The playlist's rows, in order, or Invalid naming the first entry to fix; stream entries
    only to the stations `stations` allows."""
    if not entries:
        raise Invalid("the playlist is empty: add at least one announcement or recording")
    if len(entries) > MAX_ITEMS:
        raise Invalid(f"the playlist has {len(entries)} entries; the limit is {MAX_ITEMS}")
    rows: list[PlaylistItem] = []
    for n, entry in enumerate(entries, start=1):
        where = f"entry {n}"
        if entry.kind == "announcement":
            if entry.announcement_id is None:
                raise Invalid(f"{where}: give the announcement_id of the announcement to play")
            ann = session.get(Announcement, entry.announcement_id)
            if ann is None or not visible(ann):
                raise Invalid(f"{where}: announcement {entry.announcement_id} does not exist")
            if ann.source == PLAYLIST:
                raise Invalid(f"{where}: {entry.announcement_id} is a playlist; add its entries")
            rows.append(
                PlaylistItem(
                    playlist_id=0,
                    position=n,
                    kind="announcement",
                    announcement_id=ann.id,
                    duration_ms=ann.duration_ms,
                )
            )
        elif entry.kind == "chime":
            rows.append(
                PlaylistItem(
                    playlist_id=0,
                    position=n,
                    kind="chime",
                    duration_ms=chime.duration_ms,
                    media_sha256=chime.sha256,
                    media_size=chime.size,
                )
            )
        elif entry.kind == "silence":
            lo, hi = SILENCE_MS
            if entry.duration_ms is None or not lo <= entry.duration_ms <= hi:
                raise Invalid(f"{where}: a silence lasts {lo} to {hi} ms (duration_ms)")
            rows.append(
                PlaylistItem(
                    playlist_id=0, position=n, kind="silence", duration_ms=entry.duration_ms
                )
            )
        elif entry.kind == "stream":
            fallback = None
            if entry.announcement_id is not None:
                fallback = session.get(Announcement, entry.announcement_id)
                if fallback is None or not visible(fallback):
                    raise Invalid(f"{where}: announcement {entry.announcement_id} does not exist")
                if fallback.source in WITH_ENTRIES:
                    raise Invalid(f"{where}: the fallback must be a recording or a text")
            rows.append(stream_row(n, entry, fallback, chime, stations))
        else:
            raise Invalid(
                f"{where}: kind {entry.kind!r} is not announcement, chime, silence or stream"
            )
    if all(r.kind == "silence" for r in rows):
        raise Invalid("the playlist is only silence: add something to hear")
    total = sum(r.duration_ms for r in rows)
    if total > MAX_TOTAL_MS:
        raise Invalid(
            f"the playlist lasts {total / 60000:.0f} min; the limit is {MAX_TOTAL_MS // 60000} "
            "min: split it into several"
        )
    return rows


def save_playlist(
    session: Session,
    title: str,
    rows: list[PlaylistItem],
    area_id: str | None,
    author: str,
    playlist: Announcement | None = None,
) -> Announcement:
    """Create the playlist, or replace the entries of `playlist`; the caller commits."""
    title = title.strip()
    if not title:
        raise Invalid("title is empty: give the playlist a short title")
    first_media = _first_media(session, rows)
    if playlist is None:
        playlist = Announcement(title=title, text="", normalized_text="", media_sha256="")
        playlist.area_id = area_id
        playlist.created_by = author
    else:
        for old in items_of(session, playlist.id or 0):
            session.delete(old)
        session.flush()
    playlist.title = title
    playlist.source = PLAYLIST
    playlist.engine = PLAYLIST
    playlist.duration_ms = sum(r.duration_ms for r in rows)
    playlist.media_sha256, playlist.media_size = first_media
    playlist.text = f"{len(rows)} entries"
    session.add(playlist)
    session.flush()
    assert playlist.id is not None
    for row in rows:
        row.playlist_id = playlist.id
        session.add(row)
    return playlist


def _first_media(session: Session, rows: list[PlaylistItem]) -> tuple[str, int]:
    for row in rows:
        if row.kind in ("chime", "stream") and row.media_sha256:
            return row.media_sha256, row.media_size
        if row.kind in ("announcement", "stream") and row.announcement_id is not None:
            ann = session.get(Announcement, row.announcement_id)
            assert ann is not None
            return ann.media_sha256, ann.media_size
    raise Invalid("the playlist has nothing to hear")


def items_of(session: Session, playlist_id: int) -> list[PlaylistItem]:
    return list(
        session.exec(
            select(PlaylistItem)
            .where(PlaylistItem.playlist_id == playlist_id)
            .order_by(col(PlaylistItem.position))
        ).all()
    )


def ensure_unused(session: Session, announcement: Announcement, change: str) -> None:
    """Refuse (409) to change or delete content that an active schedule or a playlist uses."""
    used = session.exec(
        select(Schedule.id)
        .where(Schedule.announcement_id == announcement.id)
        .where(col(Schedule.status).in_(ACTIVE))
        .limit(1)
    ).first()
    if used is not None:
        raise Conflict(
            f"{announcement.title!r} is used by schedule {used}: cancel that schedule before you "
            f"{change} it"
        )
    if announcement.source != PLAYLIST:
        holder = session.exec(
            select(PlaylistItem.playlist_id)
            .where(PlaylistItem.announcement_id == announcement.id)
            .limit(1)
        ).first()
        if holder is not None:
            raise Conflict(
                f"{announcement.title!r} is in playlist {holder}: remove it from the playlist "
                f"before you {change} it"
            )


def get_playlist(session: Session, playlist_id: int) -> Announcement:
    playlist = session.get(Announcement, playlist_id)
    if playlist is None or playlist.source != PLAYLIST:
        raise NotFound(f"playlist {playlist_id} does not exist")
    return playlist


def playlist_parts(
    session: Session,
    playlist_ids: Iterable[int],
    media_url: Callable[[str], str],
) -> dict[int, tuple[Part, ...]]:
    """Each playlist's audible parts with their offsets (silences are the gaps between)."""
    ids = list(set(playlist_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(PlaylistItem)
        .where(col(PlaylistItem.playlist_id).in_(ids))
        .order_by(col(PlaylistItem.playlist_id), col(PlaylistItem.position))
    ).all()
    anns = {
        a.id: a
        for a in session.exec(
            select(Announcement).where(
                col(Announcement.id).in_({r.announcement_id for r in rows if r.announcement_id})
            )
        ).all()
    }
    out: dict[int, list[Part]] = {i: [] for i in ids}
    offsets = dict.fromkeys(ids, 0)
    for row in rows:
        offset = offsets[row.playlist_id]
        offsets[row.playlist_id] = offset + row.duration_ms
        media: MediaRef | None = None
        title = ""
        if row.kind == "stream":
            ann = anns.get(row.announcement_id) if row.announcement_id else None
            stream = stream_part(row, ann, offset, media_url)
            if stream is not None:
                out[row.playlist_id].append(stream)
            continue
        if row.kind == "announcement" and row.announcement_id in anns:
            ann = anns[row.announcement_id]
            media = MediaRef(
                url=media_url(ann.media_sha256), sha256=ann.media_sha256, size=ann.media_size
            )
            title = ann.title
        elif row.kind == "chime" and row.media_sha256:
            media = MediaRef(
                url=media_url(row.media_sha256), sha256=row.media_sha256, size=row.media_size
            )
        if media is not None:
            out[row.playlist_id].append(Part(offset, row.duration_ms, media, title))
    return {i: tuple(parts) for i, parts in out.items()}
