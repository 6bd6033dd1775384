"""Request and response bodies of live broadcasts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas import Strict, TargetsIn
from protocol import Priority


class LiveCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
    targets: TargetsIn
    priority: Priority = Field(
        default=Priority.normal,
        description="normal, or priority (cuts normal programmes); emergencies are alerts",
    )
    max_minutes: float | None = Field(
        default=None, gt=0, le=720, description="Ends by itself after this; default from settings"
    )


class LivePublic(BaseModel):
    id: str
    title: str
    priority: str
    status: str = Field(description="on_air or ended")
    targets: TargetsIn
    schedule_id: int = Field(description="Its deliveries: /schedules/{schedule_id}/deliveries")
    started_by: str
    started_at: datetime
    ends_by: datetime
    ended_by: str | None
    ended_at: datetime | None
    end_reason: str
    audio_url: str = Field(description="WebSocket to send the audio to (docs/protocol.md)")
    stream_url: str = Field(description="The MP3 stream nodes play (a node's media token)")
    source_connected: bool
    listeners: int = Field(description="Nodes (and others) playing the stream now")
    audio_s: float = Field(description="Seconds of audio streamed so far")
