"""Playlists: ordered announcements, recordings, chimes and silences, scheduled as one item."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session, col, select

from api.content_schemas import (
    PlaylistCreate,
    PlaylistEntryPublic,
    PlaylistPublic,
)
from api.deps import GuardDep, ServiceDep, SessionDep
from api.routes.announcements import delete_announcement, visible
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import Announcement, ContentCategory, Schedule
from controller.programme.playlists import (
    ACTIVE,
    PLAYLIST,
    Chime,
    Entry,
    check_entries,
    ensure_unused,
    get_playlist,
    items_of,
    save_playlist,
)

router = APIRouter(prefix="/playlists", tags=["playlists"])


def public(session: Session, playlist: Announcement) -> PlaylistPublic:
    assert playlist.id is not None
    rows = items_of(session, playlist.id)
    titles = {
        a.id: a.title
        for a in session.exec(
            select(Announcement).where(
                col(Announcement.id).in_({r.announcement_id for r in rows if r.announcement_id})
            )
        ).all()
    }
    entries, offset = [], 0
    for r in rows:
        label = titles.get(r.announcement_id, "") if r.kind == "announcement" else r.kind
        if r.kind == "stream" and r.announcement_id:
            label = f"stream (fallback: {titles.get(r.announcement_id, '')})"
        entries.append(
            PlaylistEntryPublic(
                position=r.position,
                kind=r.kind,
                announcement_id=r.announcement_id,
                title=label,
                offset_s=offset / 1000,
                duration_s=r.duration_ms / 1000,
                url=r.stream_url,
                format=r.stream_format,
                via_controller=r.via_controller,
            )
        )
        offset += r.duration_ms
    used = session.exec(
        select(Schedule.id)
        .where(Schedule.announcement_id == playlist.id)
        .where(col(Schedule.status).in_(ACTIVE))
    ).all()
    return PlaylistPublic(
        id=playlist.id,
        title=playlist.title,
        duration_s=playlist.duration_ms / 1000,
        items=entries,
        category=playlist.category,
        created_by=playlist.created_by,
        created_at=playlist.created_at,
        used_by_schedules=[u for u in used if u is not None],
    )


def entries(body: PlaylistCreate) -> list[Entry]:
    return [
        Entry(e.kind, e.announcement_id, e.duration_ms, e.url, e.format, e.via_controller)
        for e in body.items
    ]


def _visible_playlist(guard: GuardDep, session: Session, playlist_id: int) -> Announcement:
    playlist = get_playlist(session, playlist_id)
    if not visible(guard, playlist):
        raise NotFound(f"playlist {playlist_id} does not exist")
    return playlist


@router.get("", response_model=list[PlaylistPublic])
def list_playlists(guard: GuardDep, session: SessionDep) -> list[PlaylistPublic]:
    guard.check(Permission.read)
    rows = session.exec(
        select(Announcement)
        .where(Announcement.source == PLAYLIST)
        .order_by(col(Announcement.id).desc())
        .limit(500)
    ).all()
    return [public(session, p) for p in rows if visible(guard, p)]


@router.get("/{playlist_id}", response_model=PlaylistPublic)
def get_one(playlist_id: int, guard: GuardDep, session: SessionDep) -> PlaylistPublic:
    guard.check(Permission.read)
    return public(session, _visible_playlist(guard, session, playlist_id))


@router.post("", response_model=PlaylistPublic, status_code=status.HTTP_201_CREATED)
async def create_playlist(
    body: PlaylistCreate, guard: GuardDep, service: ServiceDep
) -> PlaylistPublic:
    guard.check(Permission.write_content)
    chime = Chime(*await service.speech.chime())
    with service.db.session() as session:
        rows = check_entries(
            session, entries(body), chime, lambda a: visible(guard, a), service.settings.stations
        )
        playlist = save_playlist(session, body.title, rows, guard.user.area_id, guard.user.username)
        playlist.category = body.category or ContentCategory.local_news
        session.commit()
        session.refresh(playlist)
        out = public(session, playlist)
    guard.audit("playlist.create", str(out.id), body.model_dump(mode="json"))
    return out


@router.put("/{playlist_id}", response_model=PlaylistPublic)
async def replace_playlist(
    playlist_id: int, body: PlaylistCreate, guard: GuardDep, service: ServiceDep
) -> PlaylistPublic:
    """Replace the title and entries; refused while an active schedule plays it."""
    guard.check(Permission.write_content)
    chime = Chime(*await service.speech.chime())
    with service.db.session() as session:
        playlist = _visible_playlist(guard, session, playlist_id)
        guard.check_content_change(f"playlist {playlist_id}", playlist.area_id)
        ensure_unused(session, playlist, "change")
        rows = check_entries(
            session, entries(body), chime, lambda a: visible(guard, a), service.settings.stations
        )
        save_playlist(session, body.title, rows, None, "", playlist)
        playlist.category = body.category or playlist.category
        session.commit()
        session.refresh(playlist)
        out = public(session, playlist)
    guard.audit("playlist.replace", str(playlist_id), body.model_dump(mode="json"))
    return out


@router.delete("/{playlist_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_playlist(playlist_id: int, guard: GuardDep, session: SessionDep) -> None:
    """Delete a playlist no active schedule plays (the entries' content stays)."""
    guard.check(Permission.write_content)
    _visible_playlist(guard, session, playlist_id)
    delete_announcement(playlist_id, guard, session)
