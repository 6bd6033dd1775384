"""Speech sentence by sentence, so that long announcements show progress, then joined."""

from __future__ import annotations

import os
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.engines.base import SpeechEngine
from audio.errors import AudioError
from audio.ffmpeg import run_ffmpeg
from audio.loudness import Samples
from audio.normalize import split_sentences

__all__ = [
    "Progress",
    "SpokenSentence",
    "join_sentences",
    "joined_samples",
    "read_wav",
    "resample",
    "speak_sentences",
    "spoken_sentences",
]

Progress = Callable[[int, int], None]
"""Called as progress(done, total) after each sentence is spoken."""

# espeak-ng leaves about this much silence between sentences of one utterance; spoken
# separately they have none, so the join puts it back.
SENTENCE_PAUSE_S = 0.35
_JOIN_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class SpokenSentence:
    """Sentence `index` (from 0) of `total`, spoken into `wav` by `engine` with `voice`."""

    index: int
    total: int
    text: str
    wav: Path
    engine: str
    voice: str
    fallback_from: str | None


def spoken_sentences(spoken: str) -> list[str]:
    """The normalised text cut where a listener hears a sentence end (at least one piece)."""
    return split_sentences(spoken) or [spoken]


def speak_sentences(
    spoken: str, speaker: SpeechEngine, work_dir: Path, progress: Progress | None = None
) -> Iterator[SpokenSentence]:
    """Speak each sentence of already-normalised `spoken` in turn, as soon as it is ready."""
    sentences = spoken_sentences(spoken)
    total = len(sentences)
    for index, sentence in enumerate(sentences):
        wav = Path(work_dir) / f"sentence-{index:04d}.wav"
        speaker.synthesize(sentence, wav)
        if progress is not None:
            progress(index + 1, total)
        yield SpokenSentence(
            index, total, sentence, wav, speaker.name, speaker.voice,
            getattr(speaker, "fallback_from", None),
        )  # fmt: skip


def _sample_rate(wav: Path) -> int:
    try:
        with wave.open(str(wav), "rb") as handle:
            return handle.getframerate()
    except (OSError, wave.Error, EOFError) as exc:
        raise AudioError(f"speech file {wav.name} is not a readable WAV: {exc}") from exc


def join_sentences(wavs: list[Path], out_wav: Path, pause_s: float = SENTENCE_PAUSE_S) -> None:
    """One mono WAV of `wavs` in order, `pause_s` of silence between them, at the first's rate."""
    if not wavs:
        raise AudioError("there is no speech to join")
    out_wav = Path(out_wav)
    if len(wavs) == 1:
        os.replace(wavs[0], out_wav)
        return
    rate = _sample_rate(wavs[0])
    shape = f"aresample={rate},aformat=sample_fmts=s16:sample_rates={rate}:channel_layouts=mono"
    parts = []
    for index in range(len(wavs)):
        pad = f",apad=pad_dur={pause_s:.3f}" if index < len(wavs) - 1 else ""
        parts.append(f"[{index}:a]{shape}{pad}[s{index}]")
    labels = "".join(f"[s{index}]" for index in range(len(wavs)))
    graph = ";".join([*parts, f"{labels}concat=n={len(wavs)}:v=0:a=1[out]"])
    args = ["-y"]
    for wav in wavs:
        args += ["-i", str(wav)]
    fd, tmp_name = tempfile.mkstemp(dir=out_wav.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        args += ["-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_s16le", "-f", "wav"]
        run_ffmpeg([*args, "-fflags", "+bitexact", tmp_name], timeout_s=_JOIN_TIMEOUT_S)
        os.replace(tmp_name, out_wav)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def read_wav(wav: Path) -> tuple[Samples, int]:
    """The samples of a 16-bit PCM WAV (channels averaged to mono) and its rate."""
    try:
        with wave.open(str(wav), "rb") as handle:
            channels, width = handle.getnchannels(), handle.getsampwidth()
            rate, frames = handle.getframerate(), handle.readframes(handle.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise AudioError(f"speech file {Path(wav).name} is not a readable WAV: {exc}") from exc
    if width != 2:
        raise AudioError(f"speech file {Path(wav).name} is not 16-bit PCM")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32, copy=False), rate


def resample(samples: Samples, rate: int, wanted: int) -> Samples:
    """`samples` at `rate` brought to `wanted` Hz (libsoxr, high quality; unchanged when
    equal)."""
    if rate == wanted or len(samples) == 0:
        return samples
    import soxr

    return np.asarray(soxr.resample(samples, rate, wanted), dtype=np.float32)


def joined_samples(wavs: list[Path], pause_s: float = SENTENCE_PAUSE_S) -> tuple[Samples, int]:
    """What `join_sentences` writes, in memory: the sentences at the first one's rate with
    `pause_s` of silence between them."""
    if not wavs:
        raise AudioError("there is no speech to join")
    parts: list[Samples] = []
    rate = 0
    for index, wav in enumerate(wavs):
        samples, its_rate = read_wav(wav)
        rate = rate or its_rate
        if index:
            parts.append(np.zeros(round(pause_s * rate), dtype=np.float32))
        parts.append(resample(samples, its_rate, rate))
    return np.concatenate(parts), rate
