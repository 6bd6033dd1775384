"""Announcements: text rendered to speech once, stored by content address."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import AnnouncementCreate, AnnouncementPublic
from controller.access import Permission
from controller.errors import NotFound
from controller.models import Announcement

router = APIRouter(prefix="/announcements", tags=["announcements"])


def public(ann: Announcement, service_url: str) -> AnnouncementPublic:
    assert ann.id is not None
    return AnnouncementPublic(
        id=ann.id,
        title=ann.title,
        text=ann.text,
        normalized_text=ann.normalized_text,
        media_sha256=ann.media_sha256,
        media_url=f"{service_url}/media/{ann.media_sha256}.mp3",
        duration_s=ann.duration_ms / 1000,
        loudness_lufs=ann.loudness_lufs,
        engine=ann.engine,
        voice=ann.voice,
        created_at=ann.created_at,
    )


@router.get("", response_model=list[AnnouncementPublic])
def list_announcements(
    guard: GuardDep, session: SessionDep, service: ServiceDep
) -> list[AnnouncementPublic]:
    guard.check(Permission.read)
    rows = session.exec(select(Announcement).order_by(Announcement.id.desc()).limit(500)).all()  # type: ignore[union-attr]
    return [public(a, service.settings.base_url) for a in rows if visible(guard, a)]


def visible(guard: GuardDep, ann: Announcement) -> bool:
    """Content written for an area is seen there and above; content from the top everywhere."""
    if ann.area_id is None or guard.sees(ann.area_id):
        return True
    return guard.user.area_id is not None and guard.tree.contains(ann.area_id, guard.user.area_id)


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
        body.title, body.text, area_id=guard.user.area_id, author=guard.user.username
    )
    guard.audit(
        "announcement.create", str(ann.id), {"title": ann.title, "sha256": ann.media_sha256}
    )
    return public(ann, service.settings.base_url)
