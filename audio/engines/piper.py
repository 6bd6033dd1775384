"""Neural speech with the Piper executable and a Piper voice (.onnx) chosen by path."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from audio.engines.base import SpeechEngine
from audio.errors import AudioError, EngineUnavailable

__all__ = ["PiperEngine"]

_TIMEOUT_S = 600.0
# Piper voices speak at roughly this rate at length_scale 1.0.
_NATIVE_RATE_WPM = 150


class PiperEngine(SpeechEngine):
    """`piper --model MODEL` on the PATH; the voice is the model file, named by `model_path`.

    Piper reads the model's settings from `MODEL.json` beside it, so both must exist.
    Nothing is downloaded: deployments place a voice they trust and name it here.
    """

    name = "piper"

    def __init__(
        self,
        voice: str = "vi",
        rate_wpm: int = _NATIVE_RATE_WPM,
        model_path: str | Path | None = None,
        executable: str = "piper",
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

    def _command(self) -> list[str]:
        binary = shutil.which(self.executable)
        if binary is None:
            raise EngineUnavailable(
                f"the Piper engine needs the {self.executable!r} program, which is not installed"
            )
        if self.model_path is None:
            raise EngineUnavailable("the Piper engine needs model_path, the voice's .onnx file")
        if not self.model_path.is_file():
            raise EngineUnavailable(f"the Piper voice file {self.model_path} does not exist")
        config = self.model_path.with_name(self.model_path.name + ".json")
        if not config.is_file():
            raise EngineUnavailable(f"the Piper voice {self.model_path} lacks its {config.name}")
        # Piper stretches time rather than counting words: a higher rate is a shorter length.
        length_scale = _NATIVE_RATE_WPM / self.rate_wpm
        return [binary, "--model", str(self.model_path), "--length_scale", f"{length_scale:.3f}"]

    def synthesize(self, text: str, out_wav: Path) -> None:
        if not text.strip():
            raise AudioError("there is no text to speak")
        command = self._command()
        out_wav = Path(out_wav)
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
