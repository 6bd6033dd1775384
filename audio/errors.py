"""Exceptions raised by the audio package."""

from __future__ import annotations

__all__ = ["AudioError", "EngineUnavailable"]


class AudioError(Exception):
    """An announcement could not be turned into audio; the message says why in plain words."""


class EngineUnavailable(AudioError):
    """A speech engine cannot run here (missing library, binary, voice or network)."""
