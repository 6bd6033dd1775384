"""Neural speech with a Piper voice (.onnx and its .onnx.json) chosen by path: in-process
through the `piper-tts` package, or through a `piper` program when one is named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from audio.engines.base import SpeechEngine, write_wav_atomic
from audio.errors import AudioError, EngineUnavailable

__all__ = ["PiperEngine", "piper_available"]

_TIMEOUT_S = 600.0
# Piper voices speak at roughly this rate at length_scale 1.0.
_NATIVE_RATE_WPM = 150

# Loaded voices by (path, size, modification time): a model is read once per process (a
# medium voice is ~60 MB and takes a second to load) and again only when its file changes.
_VOICES: dict[tuple[str, int, int], Any] = {}
_VOICES_LOCK = threading.Lock()


def piper_available() -> bool:
    """Whether the `piper-tts` package can be imported here."""
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def _load_voice(model: Path, config: Path) -> Any:
    stat = model.stat()
    key = (str(model.resolve()), stat.st_size, stat.st_mtime_ns)
    with _VOICES_LOCK:
        voice = _VOICES.get(key)
        if voice is None:
            from piper import PiperVoice

            try:
                voice = PiperVoice.load(model, config_path=config)
            except Exception as exc:  # onnxruntime and json raise their own kinds
                raise EngineUnavailable(
                    f"the Piper voice {model} could not be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            _VOICES[key] = voice
        return voice


class PiperEngine(SpeechEngine):
    """A Piper voice, named by `model_path`; its settings are `MODEL.json` beside it.

    With `executable` unset the voice runs in this process through `piper-tts` (or, without
    that package, through a `piper` program on the PATH); with `executable` set, through that
    program. Nothing is downloaded: deployments place a voice they trust and name it here.
    """

    name = "piper"

    def __init__(
        self,
        voice: str = "vi",
        rate_wpm: int = _NATIVE_RATE_WPM,
        model_path: str | Path | None = None,
        executable: str | None = None,
    ) -> None:
        if not 80 <= rate_wpm <= 450:
            raise ValueError(f"rate_wpm must be between 80 and 450, not {rate_wpm}")
        self.model_path = Path(model_path) if model_path else None
        self.voice = self.model_path.stem if self.model_path else voice
        self.rate_wpm = rate_wpm
        self.executable = executable

    def describe(self) -> dict[str, str | int | float]:
        described = super().describe()
        described["model_path"] = str(self.model_path or "")
        described["rate_wpm"] = self.rate_wpm
        return described

    @property
    def length_scale(self) -> float:
        # Piper stretches time rather than counting words: a higher rate is a shorter length.
        return _NATIVE_RATE_WPM / self.rate_wpm

    def _voice_files(self) -> tuple[Path, Path]:
        if self.model_path is None:
            raise EngineUnavailable("the Piper engine needs model_path, the voice's .onnx file")
        if not self.model_path.is_file():
            raise EngineUnavailable(f"the Piper voice file {self.model_path} does not exist")
        config = self.model_path.with_name(self.model_path.name + ".json")
        if not config.is_file():
            raise EngineUnavailable(f"the Piper voice {self.model_path} lacks its {config.name}")
        return self.model_path, config

    def _program(self) -> str:
        name = self.executable or "piper"
        # The program installed beside this Python (a virtualenv's bin/) counts as installed.
        beside = Path(sys.executable).parent / name
        binary = shutil.which(name) or (str(beside) if os.access(beside, os.X_OK) else None)
        if binary is None:
            raise EngineUnavailable(
                f"the Piper engine needs the {name!r} program, which is not installed"
            )
        return binary

    def load(self) -> None:
        """Load the voice now (in-process) or check that the program and files exist."""
        model, config = self._voice_files()
        if self.executable is None and piper_available():
            _load_voice(model, config)
        else:
            self._program()

    def synthesize(self, text: str, out_wav: Path) -> None:
        if not text.strip():
            raise AudioError("there is no text to speak")
        if self.executable is None and piper_available():
            self._synthesize_here(text, Path(out_wav))
        else:
            self._synthesize_by_program(text, Path(out_wav))

    def _synthesize_here(self, text: str, out_wav: Path) -> None:
        from piper import SynthesisConfig

        voice = _load_voice(*self._voice_files())
        settings = SynthesisConfig(length_scale=self.length_scale)
        try:
            chunks = list(voice.synthesize(" ".join(text.split()), syn_config=settings))
        except Exception as exc:  # onnxruntime's own errors
            raise AudioError(f"piper failed: {type(exc).__name__}: {exc}") from exc
        pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
        if not chunks or not pcm:
            raise AudioError("piper produced no audio")
        if chunks[0].sample_channels != 1 or chunks[0].sample_width != 2:
            raise AudioError("piper produced audio that is not 16-bit mono")
        write_wav_atomic(out_wav, pcm, int(chunks[0].sample_rate))

    def _synthesize_by_program(self, text: str, out_wav: Path) -> None:
        model, _config = self._voice_files()
        command = [
            self._program(), "--model", str(model), "--length_scale", f"{self.length_scale:.3f}"
        ]  # fmt: skip
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        try:
            done = subprocess.run(
                [*command, "--output_file", tmp_name],
                # One line per utterance: Piper would otherwise write one file per line.
                input=" ".join(text.split()).encode("utf-8"),
                capture_output=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0 or Path(tmp_name).stat().st_size <= 44:
                message = done.stderr.decode("utf-8", errors="replace").strip()[-500:]
                raise AudioError(f"piper failed (exit status {done.returncode}): {message}")
            os.replace(tmp_name, out_wav)
        except subprocess.TimeoutExpired as exc:
            raise AudioError("piper took too long and was stopped") from exc
        except OSError as exc:
            raise EngineUnavailable(f"piper could not start: {exc}") from exc
        finally:
            Path(tmp_name).unlink(missing_ok=True)
