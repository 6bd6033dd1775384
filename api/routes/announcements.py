"""Announcements: text rendered to speech once, stored by content address."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import AnnouncementCreate, AnnouncementPublic
from controller.auth.access import Permission
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Announcement, ContentCategory, Schedule
from controller.programme.playlists import ensure_unused, items_of

router = APIRouter(prefix="/announcements", tags=["announcements"])


def public(ann: Announcement, service_url: str) -> AnnouncementPublic:
    assert ann.id is not None
    return AnnouncementPublic(
        id=ann.id,
        title=ann.title,
        text=ann.text,
        normalized_text=ann.normalized_text,
        media_sha256=ann.media_sha256,
        media_url=f"{service_url}/media/{ann.media_sha256}.mp3" if ann.media_sha256 else "",
        duration_s=ann.duration_ms / 1000,
        loudness_lufs=ann.loudness_lufs,
        engine=ann.engine,
        voice=ann.voice,
        fallback_from=ann.fallback_from,
        source=ann.source,
        repeat=ann.repeat,
        category=ann.category,
        created_by=ann.created_by,
        created_at=ann.created_at,
    )


@router.get("", response_model=list[AnnouncementPublic])
def list_announcements(
    guard: GuardDep, session: SessionDep, service: ServiceDep
) -> list[AnnouncementPublic]:
    guard.check(Permission.read)
    rows = session.exec(select(Announcement).order_by(col(Announcement.id).desc()).limit(500)).all()
    return [public(a, service.settings.base_url) for a in rows if visible(guard, a)]


def visible(guard: GuardDep, ann: Announcement) -> bool:
    """Content written for an area is seen there and above; content from the top everywhere."""
    return guard.sees_content(ann.area_id)


@router.get("/{announcement_id}", response_model=AnnouncementPublic)
def get_announcement(
    announcement_id: int, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> AnnouncementPublic:
    guard.check(Permission.read)
    ann = session.get(Announcement, announcement_id)
    if ann is None or not visible(guard, ann):
        raise NotFound(f"announcement {announcement_id} does not exist")
    return public(ann, service.settings.base_url)


@router.post("", response_model=AnnouncementPublic, status_code=status.HTTP_201_CREATED)
async def create_announcement(
    body: AnnouncementCreate, guard: GuardDep, service: ServiceDep
) -> AnnouncementPublic:
    guard.check(Permission.write_content)
    ann = await service.broadcasts.create_announcement(
        body.title,
        body.text,
        area_id=guard.user.area_id,
        author=guard.user.username,
        engine=body.engine,
        repeat=body.repeat,
        category=body.category,
    )
    guard.audit(
        "announcement.create", str(ann.id), {"title": ann.title, "sha256": ann.media_sha256}
    )
    return public(ann, service.settings.base_url)


@router.post("/upload", response_model=AnnouncementPublic, status_code=status.HTTP_201_CREATED)
async def upload_recording(
    guard: GuardDep,
    service: ServiceDep,
    title: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="MP3, WAV, M4A or OGG recording")],
    category: Annotated[ContentCategory, Form()] = ContentCategory.local_news,
) -> AnnouncementPublic:
    """An officer's own recording: probed by content, limited, mastered like speech."""
    guard.check(Permission.write_content)
    limit = int(service.settings.upload_max_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(dir=service.store.root) as tmp:
        path = Path(tmp) / "upload"
        size = 0
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise Invalid(
                        f"the recording is larger than {service.settings.upload_max_mb:g} MB"
                    )
                out.write(chunk)
        ann = await service.broadcasts.create_from_upload(
            title,
            path,
            file.filename or "recording",
            guard.user.area_id,
            guard.user.username,
            category,
        )
    guard.audit(
        "announcement.upload", str(ann.id), {"title": ann.title, "sha256": ann.media_sha256}
    )
    return public(ann, service.settings.base_url)


@router.delete("/{announcement_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_announcement(announcement_id: int, guard: GuardDep, session: SessionDep) -> None:
    """Delete an announcement no schedule uses; its media goes at the next collection."""
    guard.check(Permission.write_content)
    ann = session.get(Announcement, announcement_id)
    if ann is None or not visible(guard, ann):
        raise NotFound(f"announcement {announcement_id} does not exist")
    guard.check_content_change(f"announcement {announcement_id}", ann.area_id)
    ensure_unused(session, ann, "delete")
    used = session.exec(
        select(Schedule.id).where(Schedule.announcement_id == announcement_id).limit(1)
    ).first()
    if used is not None:
        # A cancelled schedule still names it: keep the record of what was broadcast.
        raise Conflict(
            f"announcement {announcement_id} is named by schedule {used}, which is kept as a "
            "record of what was broadcast"
        )
    for item in items_of(session, announcement_id):
        session.delete(item)
    session.flush()
    session.delete(ann)
    session.commit()
    guard.audit("announcement.delete", str(announcement_id))
