"""Announcements: text rendered to speech once, stored by content address."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import ServiceDep, SessionDep
from api.schemas import AnnouncementCreate, AnnouncementPublic
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
def list_announcements(session: SessionDep, service: ServiceDep) -> list[AnnouncementPublic]:
    rows = session.exec(select(Announcement).order_by(Announcement.id.desc()).limit(500)).all()  # type: ignore[union-attr]
    return [public(a, service.settings.base_url) for a in rows]


@router.get("/{announcement_id}", response_model=AnnouncementPublic)
def get_announcement(
    announcement_id: int, session: SessionDep, service: ServiceDep
) -> AnnouncementPublic:
    ann = session.get(Announcement, announcement_id)
    if ann is None:
        raise NotFound(f"announcement {announcement_id} does not exist")
    return public(ann, service.settings.base_url)


@router.post("", response_model=AnnouncementPublic, status_code=status.HTTP_201_CREATED)
async def create_announcement(body: AnnouncementCreate, service: ServiceDep) -> AnnouncementPublic:
    ann = await service.broadcasts.create_announcement(body.title, body.text)
    return public(ann, service.settings.base_url)
