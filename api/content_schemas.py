"""Request and response bodies for playlists and node groups."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import ID_PATTERN, Strict
from controller.core.models import ContentCategory


class PlaylistEntryIn(Strict):
    kind: Literal["announcement", "chime", "silence", "stream"]
    announcement_id: int | None = Field(
        default=None,
        ge=1,
        description="For kind 'announcement': a text or a recording; for kind 'stream': the "
        "recording to play when the source is dead (optional)",
    )
    duration_ms: int | None = Field(
        default=None, ge=0, le=86_400_000, description="For kinds 'silence' and 'stream'"
    )
    url: str | None = Field(
        default=None,
        max_length=2000,
        description="For kind 'stream': an http(s) MP3 or AAC stream (an Icecast mount) or HLS",
    )
    format: Literal["mp3", "aac", "hls"] | None = Field(
        default=None, description="For kind 'stream'; by default from the url (.m3u8: hls)"
    )
    via_controller: bool = Field(
        default=False,
        description="For kind 'stream': nodes play the controller's copy (a source they cannot "
        "reach); the controller pulls it once, as MP3",
    )


class PlaylistCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
    items: list[PlaylistEntryIn] = Field(min_length=1, max_length=200)
    category: ContentCategory | None = Field(
        default=None,
        description="For the province's reports: policy_law, local_news or emergency (its "
        "stream entries count as relayed programmes whatever it says); by default local_news "
        "for a new playlist, unchanged for a replaced one",
    )


class PlaylistEntryPublic(BaseModel):
    position: int
    kind: str
    announcement_id: int | None
    title: str
    offset_s: float
    duration_s: float
    url: str | None = None
    format: str | None = None
    via_controller: bool = False


class PlaylistPublic(BaseModel):
    id: int
    title: str
    duration_s: float = Field(description="Total: every entry, silences included")
    items: list[PlaylistEntryPublic]
    category: str
    created_by: str
    created_at: datetime
    used_by_schedules: list[int]


class GroupCreate(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    area_id: str = Field(pattern=ID_PATTERN, description="Every member lies within this area")
    nodes: list[str] = Field(default_factory=list, max_length=5000)


class GroupMembers(Strict):
    nodes: list[str] = Field(max_length=5000)


class GroupPublic(BaseModel):
    id: str
    name: str
    area_id: str
    nodes: list[str]
    created_by: str
