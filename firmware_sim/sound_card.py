"""The real loudspeaker: decode recordings and streams and play them through a sound card.

miniaudio does both jobs in one small wheel: it decodes MP3 itself (no codec packages on the
device) and plays through ALSA or PulseAudio, which it loads at run time. Each sound is a
`Voice`: a decoder thread fills its PCM buffer (a little ahead, never a whole file in memory)
and the device callback takes from every voice, mixing the rare overlap (an alert starting as
an item ends). The device is opened at the first sound and kept open, playing silence between
sounds: the amplifier hears no clicks, and no other program takes the card. Streams are
decoded by an ffmpeg process (see `decoders`); recordings need nothing but miniaudio.
"""

from __future__ import annotations

import array
import logging
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TypeVar

import miniaudio

from firmware_sim.decoders import decode_file, decode_tone, open_decoder
from firmware_sim.player import Sound, StreamSink, Volume
from protocol import StreamFormat

log = logging.getLogger(__name__)

_Arg = TypeVar("_Arg")

RATE = 48_000  # mono, 16-bit: what every voice is decoded to
BYTES_PER_S = RATE * 2
AHEAD_S = 2.0  # how far a decoder may run ahead of the loudspeaker


class DeviceError(RuntimeError):
    """The sound card cannot be used; the message names what was asked and what exists."""


class Voice:
    """One sound's PCM, filled by its decoder thread and drained by the device callback."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self._buf = bytearray()
        self._cond = threading.Condition()
        self.finished = False  # the decoder has nothing more
        self.stopped = False
        self.written = 0  # bytes handed to the device

    def push(self, pcm: bytes) -> bool:
        """Add decoded PCM (scaled to the volume now); False once stopped (decoder: give up)."""
        level = max(0, min(self.volume(), 100))
        if level < 100:
            samples = array.array("h", pcm)
            gain = (level / 100) ** 2  # perceived loudness follows roughly the square
            pcm = array.array("h", (int(s * gain) for s in samples)).tobytes()
        with self._cond:
            while len(self._buf) > AHEAD_S * BYTES_PER_S and not self.stopped:
                self._cond.wait(0.5)
            if self.stopped:
                return False
            self._buf += pcm
        return True

    def pull(self, nbytes: int) -> bytes:
        with self._cond:
            out = bytes(self._buf[:nbytes])
            del self._buf[:nbytes]
            self._cond.notify_all()
        self.written += len(out)
        return out

    @property
    def done(self) -> bool:
        return self.stopped or (self.finished and not self._buf)

    def finish(self) -> None:
        self.finished = True

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._buf.clear()
            self._cond.notify_all()


class SoundCardPlayer:
    """Plays through `device` ("default", an ALSA name such as "hw:1,0" or "null", or a
    PulseAudio sink) with miniaudio's `backend` ("alsa", "pulseaudio" or "null")."""

    name = "sound card"

    def __init__(self, device: str = "default", backend: str = "alsa") -> None:
        self.backend = _backend(backend)
        self.device = device
        self.device_id = self._find(device)
        self._voices: list[Voice] = []
        self._lock = threading.Lock()
        self._output: miniaudio.PlaybackDevice | None = None
        self.opened = 0  # times the device was opened (for tests and logs)
        self.fed = 0  # bytes handed to the device, silence included (for tests and logs)

    def _find(self, device: str) -> object | None:
        if device == "default" or self.backend is miniaudio.Backend.NULL:
            return None
        found = miniaudio.Devices(backends=[self.backend]).get_playbacks()
        for info in found:
            if device in (_device_name(info), info["name"]):
                device_id: object = info["id"]
                return device_id
        names = ", ".join(sorted(_device_name(i) for i in found)) or "none"
        raise DeviceError(f"audio device {device!r} not found; playback devices: {names}")

    # Player ---------------------------------------------------------------------------------

    def play_file(self, path: Path | None, volume: Volume) -> Sound:
        voice = Voice(volume)
        if path is None or not path.is_file():
            log.error("nothing to play: %s is not in the media cache", path)
            voice.finish()
            return voice
        self._start(voice, decode_file, path)
        return voice

    def play_tone(self, hz: int, volume: Volume) -> Sound:
        voice = Voice(volume)
        self._start(voice, decode_tone, hz)
        return voice

    def open_stream(self, fmt: StreamFormat, volume: Volume) -> StreamSink:
        voice = Voice(volume)
        decoder = open_decoder(fmt, voice, RATE)
        self._add(voice)
        return decoder

    def close(self) -> None:
        with self._lock:
            for voice in self._voices:
                voice.stop()
            self._voices.clear()
            self._close_output()

    # Mixing ---------------------------------------------------------------------------------

    def _start(self, voice: Voice, target: Callable[[Voice, _Arg, int], None], arg: _Arg) -> None:
        thread = threading.Thread(target=target, args=(voice, arg, RATE), daemon=True)
        self._add(voice)
        thread.start()

    def _add(self, voice: Voice) -> None:
        with self._lock:
            self._voices.append(voice)
            if self._output is None:
                self._open_output()

    def _open_output(self) -> None:
        output = miniaudio.PlaybackDevice(
            output_format=miniaudio.SampleFormat.SIGNED16,
            nchannels=1,
            sample_rate=RATE,
            buffersize_msec=100,
            device_id=self.device_id,
            backends=[self.backend],
            app_name="commune-radio",
        )
        feed = self._feed()
        next(feed)
        output.start(feed)
        self._output = output
        self.opened += 1

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    def _feed(self) -> Generator[bytes, int, None]:
        """The device callback: `required` frames from the voices, silence where none."""
        required = yield b""
        while True:
            nbytes = required * 2
            with self._lock:
                voices = list(self._voices)
            chunks = [v.pull(nbytes) for v in voices]
            ended = [v for v in voices if v.done]
            if ended:
                with self._lock:
                    self._voices = [v for v in self._voices if v not in ended]
            if not any(chunks):
                # Nothing to play: wait about as long as this silence lasts. A real card calls
                # at that pace anyway; a sink without a clock (ALSA's null or file devices)
                # would otherwise take silence as fast as the CPU can make it.
                time.sleep(required / RATE / 2)
            self.fed += nbytes
            required = yield _mix(chunks, nbytes)


def _mix(chunks: list[bytes], nbytes: int) -> bytes:
    present = [c for c in chunks if c]
    if not present:
        return bytes(nbytes)
    if len(present) == 1:
        return present[0].ljust(nbytes, b"\0")
    total = array.array("h", bytes(nbytes))
    for chunk in present:
        for i, s in enumerate(array.array("h", chunk.ljust(nbytes, b"\0"))):
            total[i] = max(-32768, min(32767, total[i] + s))
    return total.tobytes()


def _backend(name: str) -> miniaudio.Backend:
    backends = {
        "alsa": miniaudio.Backend.ALSA,
        "pulseaudio": miniaudio.Backend.PULSEAUDIO,
        "null": miniaudio.Backend.NULL,
    }
    if name not in backends:
        raise DeviceError(f"audio backend {name!r}: use one of {', '.join(backends)}")
    return backends[name]


def _device_name(info: dict[str, object]) -> str:
    # The device id is a C union whose ALSA and PulseAudio members are the device's name.
    raw = bytes(miniaudio.ffi.buffer(info["id"], 256))  # type: ignore[attr-defined]  # miniaudio does not re-export its cffi module
    return raw.split(b"\0", 1)[0].decode(errors="replace")
