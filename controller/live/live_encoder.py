"""ffmpeg processes that make the controller's MP3 streams: one per live source connection, one
per relayed station. Each writes MP3 frames into a `StreamHub`; nothing is encoded per node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from audio.ffmpeg import ffmpeg_exe
from controller.live.stream_hub import StreamHub
from protocol.audio_frames import FrameReader

log = logging.getLogger(__name__)

RATE = 48_000
# What a source may send: the browser's MediaRecorder (WebM or Ogg with Opus), a mixing desk
# through `radio live` (raw PCM or MP3), or any container ffmpeg recognises ("auto").
INPUTS: dict[str, list[str]] = {
    "webm": ["-f", "matroska"],
    "ogg": ["-f", "ogg"],
    "mp3": ["-f", "mp3"],
    "pcm": ["-f", "s16le"],
    "auto": [],
}


def mp3_out(kbps: int) -> list[str]:
    """Mono MP3 at `kbps`, frame by frame, without the tags a file would get."""
    return [
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "-c:a",
        "libmp3lame",
        "-b:a",
        f"{kbps}k",
        "-write_xing",
        "0",
        "-id3v2_version",
        "0",
        "-flush_packets",
        "1",
        "-f",
        "mp3",
        "pipe:1",
    ]


class Encoder:
    """One ffmpeg: input bytes in, MP3 frames out into `hub`."""

    def __init__(self, hub: StreamHub, args: Sequence[str], name: str) -> None:
        self.hub = hub
        self.args = list(args)
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self.stderr = b""
        self.bytes_in = 0

    @classmethod
    def for_source(cls, hub: StreamHub, fmt: str, rate: int, channels: int, kbps: int) -> Encoder:
        pcm = ["-ar", str(rate), "-ac", str(channels)] if fmt == "pcm" else []
        # No input buffering and little probing: the voice should leave as soon as it arrives.
        low_delay = ["-fflags", "nobuffer", "-probesize", "32" if fmt == "pcm" else "4096"]
        args = [*low_delay, *INPUTS[fmt], *pcm, "-i", "pipe:0", *mp3_out(kbps)]
        return cls(hub, args, f"live source ({fmt})")

    @classmethod
    def for_station(cls, hub: StreamHub, kbps: int, name: str) -> Encoder:
        """A relayed station's bytes (MP3, AAC, or HLS audio taken out of its segments) in on
        stdin, as the controller's own client reads them: ffmpeg never opens a URL itself
        (controller/core/station_hosts.py)."""
        # Audio is recognised within a few frames: what is not after 64 KB is no audio (ffmpeg
        # would otherwise read a megabyte, or to the end, of a web page). Only its input pipe may
        # be opened, so no bytes a station sends (an HLS playlist, a concat list) open a URL.
        guard = ["-protocol_whitelist", "pipe", "-formatprobesize", "65536"]
        return cls(hub, [*guard, "-i", "pipe:0", *mp3_out(kbps)], name)

    async def start(self, with_input: bool) -> None:
        quiet = ["-hide_banner", "-loglevel", "error", *(() if with_input else ("-nostdin",))]
        self.proc = await asyncio.create_subprocess_exec(
            ffmpeg_exe(),
            *quiet,
            *self.args,
            stdin=asyncio.subprocess.PIPE if with_input else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._pump = asyncio.create_task(self._read(), name=f"encoder-{self.hub.name}")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stderr = asyncio.create_task(self.proc.stderr.read()) if self.proc.stderr else None
        while chunk := await self.proc.stdout.read(4096):
            self.hub.publish(chunk)
        await self.proc.wait()
        if stderr is not None:
            self.stderr = (await stderr)[-2000:]
        if self.proc.returncode:
            tail = self.stderr.decode(errors="replace").strip().splitlines()[-3:]
            log.warning("%s ended (%s): %s", self.name, self.proc.returncode, " | ".join(tail))

    async def finished(self) -> None:
        """Until ffmpeg has exited and all it wrote is in the hub."""
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pump)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def write(self, data: bytes) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        self.bytes_in += len(data)
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.warning("%s refused input: %s", self.name, exc)

    def end_input(self) -> None:
        """No more input: ffmpeg encodes what it has and exits."""
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    async def close(self, timeout_s: float = 3.0) -> None:
        """End the input and let ffmpeg flush its last frames; kill it if it will not end."""
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        if self.proc.stdin is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
        try:
            if self._pump is not None:
                await asyncio.wait_for(asyncio.shield(self._pump), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
        with contextlib.suppress(ProcessLookupError):
            await self.proc.wait()


async def silence_frames(kbps: int, seconds: float = 1.0) -> list[bytes]:
    """MP3 frames of silence in the format of our streams, to keep a live stream flowing while
    its source is away (nodes would otherwise take it for a stalled stream)."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-nostdin",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"anullsrc=r={RATE}:cl=mono",
        "-t",
        str(seconds),
        *mp3_out(kbps),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    frames = FrameReader().feed(out)
    return frames[2:] or frames  # the encoder's first frames carry its start-up delay
