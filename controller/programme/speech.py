"""Speech for announcements: renderers per mastering choice, the reading dictionary that
administrators extend, previews, and uploaded recordings."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
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
    find_overrides,
    ingest_upload,
    make_chime,
    master,
    normalize,
    shown_text,
    split_sentences,
)
from controller.core.config import Settings
from controller.core.db import Database
from controller.core.models import Abbreviation, Announcement, Area, PlaylistItem

log = logging.getLogger(__name__)


class Speech:
    def __init__(self, settings: Settings, db: Database, store: MediaStore) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self._renderers: dict[int, Renderer] = {}
        # Every entry as (term, reading, area_id); None until read (and after a change).
        self._dictionary: list[tuple[str, str, str | None]] | None = None
        self.on_render: Callable[[float], None] | None = None  # seconds per render (metrics)

    def mastering(self, repeat: int = 1) -> MasteringSettings:
        s = self.settings
        return MasteringSettings(
            target_lufs=s.loudness_target_lufs,
            true_peak_dbtp=s.true_peak_dbtp,
            bitrate_kbps=s.mp3_bitrate_kbps,  # type: ignore[arg-type]  # checked by pydantic
            repeat=repeat,
            opening_chime=s.opening_chime,
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

    def _entries(self) -> list[tuple[str, str, str | None]]:
        entries = self._dictionary
        if entries is None:
            with self.db.session() as session:
                rows = session.exec(select(Abbreviation)).all()
            entries = [(r.term, r.reading, r.area_id) for r in rows]
            self._dictionary = entries
        return entries

    def _lineage(self, area_id: str) -> list[str]:
        """The area, its parent, and so on up to the top."""
        chain: list[str] = []
        with self.db.session() as session:
            current: str | None = area_id
            while current is not None and current not in chain:
                chain.append(current)
                area = session.get(Area, current)
                current = area.parent_id if area is not None else None
        return chain

    def dictionary(self, area_id: str | None = None) -> dict[str, str]:
        """The readings that apply to content of `area_id`: the list for every area, then the
        local lists of the area and of each area above it, the nearest winning a term."""
        entries = self._entries()
        local = {entry_area for _, _, entry_area in entries if entry_area is not None}
        lineage = self._lineage(area_id) if area_id is not None and local else []
        rank = {area: index for index, area in enumerate(lineage)}
        chosen: dict[str, tuple[int, str]] = {}
        for term, reading, entry_area in entries:
            if entry_area is None:
                order = len(lineage)
            elif entry_area in rank:
                order = rank[entry_area]
            else:
                continue
            if term not in chosen or order < chosen[term][0]:
                chosen[term] = (order, reading)
        return {term: reading for term, (_, reading) in chosen.items()}

    def forget_dictionary(self) -> None:
        self._dictionary = None

    def preview(self, text: str, area_id: str | None = None) -> dict[str, Any]:
        """How `text` will be read for content of `area_id`, sentence by sentence, with the
        inline overrides it holds and the text as people see it."""
        reading = normalize(text, self.dictionary(area_id))
        return {
            "normalized_text": reading,
            "sentences": split_sentences(reading),
            "shown_text": shown_text(text),
            "overrides": [{"shown": o.shown, "reading": o.reading} for o in find_overrides(text)],
        }

    async def render(
        self, text: str, engine: str | None, repeat: int, area_id: str | None = None
    ) -> RenderResult:
        """Speech of `text` with the dictionary of content of `area_id` (None: every area's)."""
        started = time.perf_counter()
        result = await asyncio.to_thread(
            self.renderer(repeat).render_text,
            text,
            engine=engine,
            extra_abbreviations=self.dictionary(area_id),
        )
        if self.on_render is not None:
            self.on_render(time.perf_counter() - started)
        return result

    async def ingest(self, path: Path) -> UploadResult:
        limits = UploadLimits(
            max_bytes=int(self.settings.upload_max_mb * 1024 * 1024),
            max_duration_s=self.settings.upload_max_duration_s,
        )
        return await asyncio.to_thread(
            ingest_upload,
            path,
            self.store,
            self.mastering(),
            limits,
            opening_chime=self.settings.opening_chime,
        )

    def _chime_key(self) -> str:
        m = self.mastering()
        return f"playlist-chime:v1:{m.target_lufs}:{m.true_peak_dbtp}:{m.bitrate_kbps}"

    async def chime(self) -> tuple[str, int, int]:
        """The chime a playlist may play between items: (sha256, size, duration_ms), made once."""
        known = self.store.lookup(self._chime_key())
        if known and self.store.has(str(known.get("sha256", ""))):
            return str(known["sha256"]), int(known["size"]), int(known["duration_ms"])
        return await asyncio.to_thread(self._make_chime)

    def _make_chime(self) -> tuple[str, int, int]:
        work = Path(tempfile.mkdtemp(dir=self.store.tmp_dir, prefix="chime-"))
        try:
            settings = self.mastering().model_copy(
                update={"opening_chime": False, "lead_silence_s": 0.0}
            )
            wav = make_chime(work / "chime.wav", settings.sample_rate)
            measured = master(wav, work / "chime.mp3", settings)
            sha256 = self.store.put_file(work / "chime.mp3", move=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        size = self.store.size(sha256) or 0
        duration_ms = int(measured.duration_s * 1000)
        self.store.remember(
            self._chime_key(), {"sha256": sha256, "size": size, "duration_ms": duration_ms}
        )
        return sha256, size, duration_ms

    def collect_garbage(self) -> list[str]:
        """Media no announcement refers to, older than the retention period (failed or
        abandoned renders, replaced uploads). Announcements keep their media."""
        with self.db.session() as session:
            keep = set(session.exec(select(Announcement.media_sha256)).all())
            keep |= {
                sha
                for sha in session.exec(select(PlaylistItem.media_sha256)).all()
                if sha is not None
            }
        chime = self.store.lookup(self._chime_key())
        if chime:
            keep.add(str(chime.get("sha256", "")))
        removed = self.store.collect_garbage(
            keep, older_than_s=self.settings.media_retention_days * 86400
        )
        if removed:
            log.info("media garbage collection removed %d file(s)", len(removed))
        return removed
