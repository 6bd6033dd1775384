"""Speech for announcements: renderers per mastering choice, the reading dictionary that
administrators extend, previews, and uploaded recordings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlmodel import select

from audio import (
    MasteringSettings,
    MediaStore,
    Renderer,
    RenderResult,
    RenderSettings,
    UploadLimits,
    UploadResult,
    ingest_upload,
    normalize,
    split_sentences,
)
from controller.config import Settings
from controller.db import Database
from controller.models import Abbreviation, Announcement

log = logging.getLogger(__name__)


class Speech:
    def __init__(self, settings: Settings, db: Database, store: MediaStore) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self._renderers: dict[int, Renderer] = {}
        self._dictionary: dict[str, str] | None = None

    def mastering(self, repeat: int = 1) -> MasteringSettings:
        s = self.settings
        return MasteringSettings(
            target_lufs=s.loudness_target_lufs,
            true_peak_dbtp=s.true_peak_dbtp,
            bitrate_kbps=s.mp3_bitrate_kbps,  # type: ignore[arg-type]
            repeat=repeat,
        )

    def renderer(self, repeat: int = 1) -> Renderer:
        if repeat not in self._renderers:
            s = self.settings
            options: dict[str, Any] = {}
            if s.tts_piper_model:
                options["piper"] = {"model_path": s.tts_piper_model}
            self._renderers[repeat] = Renderer(
                self.store,
                RenderSettings(
                    engine=s.tts_engine,
                    voice=s.tts_voice,
                    mastering=self.mastering(repeat),
                    max_chars=s.max_text_chars,
                    fallback_engine=s.tts_fallback_engine,
                    engine_options=options,
                ),
            )
        return self._renderers[repeat]

    # --- the dictionary ------------------------------------------------------------------

    def dictionary(self) -> dict[str, str]:
        if self._dictionary is None:
            with self.db.session() as session:
                rows = session.exec(select(Abbreviation)).all()
            self._dictionary = {r.term: r.reading for r in rows}
        return dict(self._dictionary)

    def forget_dictionary(self) -> None:
        self._dictionary = None

    def preview(self, text: str) -> dict[str, Any]:
        extra = self.dictionary()
        reading = normalize(text, extra)
        return {"normalized_text": reading, "sentences": split_sentences(reading)}

    async def render(self, text: str, engine: str | None, repeat: int) -> RenderResult:
        return await asyncio.to_thread(
            self.renderer(repeat).render_text,
            text,
            engine=engine,
            extra_abbreviations=self.dictionary(),
        )

    async def ingest(self, path: Path) -> UploadResult:
        limits = UploadLimits(
            max_bytes=int(self.settings.upload_max_mb * 1024 * 1024),
            max_duration_s=self.settings.upload_max_duration_s,
        )
        return await asyncio.to_thread(
            ingest_upload, path, self.store, self.mastering(), limits, opening_chime=True
        )

    def collect_garbage(self) -> list[str]:
        """Media no announcement refers to, older than the retention period (failed or
        abandoned renders, replaced uploads). Announcements keep their media."""
        with self.db.session() as session:
            keep = set(session.exec(select(Announcement.media_sha256)).all())
        removed = self.store.collect_garbage(
            keep, older_than_s=self.settings.media_retention_days * 86400
        )
        if removed:
            log.info("media garbage collection removed %d file(s)", len(removed))
        return removed
