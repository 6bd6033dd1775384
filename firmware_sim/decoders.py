"""Decoders of the real player: recordings, tones and streams to 16-bit mono PCM, each in its
own thread so that a slow or stalled source never holds up the sound card or the node."""

from __future__ import annotations

import array
import logging
import math
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol

import miniaudio

from protocol import StreamFormat

log = logging.getLogger(__name__)


class PcmSink(Protocol):
    def push(self, pcm: bytes) -> bool: ...

    def finish(self) -> None: ...

    def stop(self) -> None: ...


def decode_file(voice: PcmSink, path: Path, rate: int) -> None:
    """A cached recording (MP3, WAV, FLAC, Ogg Vorbis), from the start to its end."""
    try:
        for chunk in miniaudio.stream_file(
            str(path), miniaudio.SampleFormat.SIGNED16, 1, rate, frames_to_read=4096
        ):
            if not voice.push(chunk.tobytes()):
                return
    except (miniaudio.DecodeError, miniaudio.MiniaudioError) as exc:
        log.error("cannot decode %s: %s", path.name, exc)
    finally:
        voice.finish()


def tone_pcm(hz: int, start: int, frames: int, rate: int) -> bytes:
    """`frames` samples of a sine at `hz`, a third of full scale, from sample `start`."""
    step = 2 * math.pi * hz / rate
    return array.array(
        "h", (int(10_000 * math.sin(step * (start + i))) for i in range(frames))
    ).tobytes()


def decode_tone(voice: PcmSink, hz: int, rate: int) -> None:
    """A test tone, until stopped."""
    done, block = 0, rate // 10
    while voice.push(tone_pcm(hz, done, block, rate)):
        done += block
    voice.finish()


class FfmpegStreamDecoder:
    """A stream's frames (MP3 or ADTS AAC), decoded by an ffmpeg process as they arrive.

    Not miniaudio here: its MP3 decoder waits for 16 KiB before it decodes a frame (almost
    3 s of a 48 kb/s stream, too late for live speech), and it has no AAC decoder.
    """

    def __init__(self, voice: PcmSink, rate: int, exe: str, fmt: StreamFormat) -> None:
        self.voice = voice
        demuxer = "mp3" if fmt == StreamFormat.mp3 else "aac"
        # No probing and no input buffering: sound as soon as the first frame is in.
        low_delay = ["-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0"]
        pcm_out = ["-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"]
        self.proc = subprocess.Popen(
            [exe, "-nostdin", "-loglevel", "error", *low_delay, "-f", demuxer, "-i", "-", *pcm_out],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pending: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._write, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while (data := self.pending.get()) is not None:
                stdin.write(data)
                stdin.flush()
        except OSError:
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while pcm := stdout.read(4096):
                if not self.voice.push(pcm):
                    break
        finally:
            self.voice.finish()
            self.proc.kill()
            self.proc.wait()

    def feed(self, frames: list[bytes]) -> None:
        self.pending.put(b"".join(frames))

    def end(self) -> None:
        """No more frames: the decoder plays out those it holds, then the voice is done."""
        self.pending.put(None)

    def stop(self) -> None:
        self.voice.stop()
        self.pending.put(None)
        self.proc.kill()


class NoDecoder:
    """A stream this device cannot decode: it is read and reported, but stays silent."""

    def __init__(self, voice: PcmSink, why: str) -> None:
        self.voice = voice
        log.error("stream cannot play here: %s", why)
        voice.finish()

    def feed(self, frames: list[bytes]) -> None:
        return None

    def end(self) -> None:
        return None

    def stop(self) -> None:
        self.voice.stop()


def ffmpeg_path() -> str | None:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def open_decoder(fmt: StreamFormat, voice: PcmSink, rate: int) -> FfmpegStreamDecoder | NoDecoder:
    """A decoder for frames of `fmt` (mp3 or aac: HLS segments are one or the other)."""
    exe = ffmpeg_path()
    if exe is None:
        return NoDecoder(voice, "streams need ffmpeg on the device (apt install ffmpeg)")
    return FfmpegStreamDecoder(voice, rate, exe, fmt)
