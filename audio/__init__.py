"""Announcement audio: Vietnamese text normalised, spoken, mastered to MP3 and stored by hash.

A library only: no broker, HTTP or database access. Licence: GPL-3.0-or-later.
"""

from __future__ import annotations

from audio.engines import FallbackEngine, engine_names, get_engine
from audio.errors import AudioError, EngineUnavailable
from audio.ffmpeg import ffmpeg_exe
from audio.mastering import MasteringSettings, make_chime, master
from audio.measure import Measurement, measure
from audio.normalize import find_overrides, normalize, shown_text, split_sentences
from audio.pcm_master import prepare_mastering
from audio.render import Renderer, RenderResult, RenderSettings
from audio.speech import SpokenSentence
from audio.store import MediaStore
from audio.uploads import UploadLimits, UploadRefused, UploadResult, ingest_upload

__all__ = [
    "AudioError",
    "EngineUnavailable",
    "FallbackEngine",
    "MasteringSettings",
    "Measurement",
    "MediaStore",
    "RenderResult",
    "RenderSettings",
    "Renderer",
    "SpokenSentence",
    "UploadLimits",
    "UploadRefused",
    "UploadResult",
    "engine_names",
    "ffmpeg_exe",
    "find_overrides",
    "get_engine",
    "ingest_upload",
    "make_chime",
    "master",
    "measure",
    "normalize",
    "prepare_mastering",
    "shown_text",
    "split_sentences",
]
