"""A radio station on 127.0.0.1 for stream tests: ffmpeg makes an endless sine, in real time.

`mp3` and `aac` serve one endless HTTP response per listener, as an Icecast mount does; `hls`
serves the playlist and segments ffmpeg writes. `stop()` kills the station (connections drop,
new ones are refused) and `start()` brings it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from audio.ffmpeg import ffmpeg_exe

CONTENT_TYPES = {"mp3": "audio/mpeg", "aac": "audio/aac"}


class Station:
    def __init__(self, fmt: str = "mp3", kbps: int = 64, hz: int = 440) -> None:
        self.fmt = fmt
        self.kbps = kbps
        self.hz = hz
        self.port = 0
        self.listeners: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head, as received
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._ffmpeg: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="station-"))

    @property
    def url(self) -> str:
        name = "live.m3u8" if self.fmt == "hls" else f"live.{self.fmt}"
        return f"http://127.0.0.1:{self.port}/{name}"

    async def start(self) -> Station:
        codec = ["-c:a", "aac"] if self.fmt in ("aac", "hls") else ["-c:a", "libmp3lame"]
        if self.fmt == "hls":
            out = ["-f", "hls", "-hls_time", "1", "-hls_list_size", "6"]
            out += ["-hls_flags", "delete_segments", str(self._dir / "live.m3u8")]
        else:
            out = ["-f", "adts" if self.fmt == "aac" else "mp3", "pipe:1"]
        self._ffmpeg = await asyncio.create_subprocess_exec(
            ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
            "-i", f"sine=frequency={self.hz}:sample_rate=48000", "-ac", "1", *codec,
            "-b:a", f"{self.kbps}k", *out,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if self.fmt != "hls":
            self._pump = asyncio.create_task(self._fan_out())
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.fmt == "hls":
            for _ in range(100):  # the playlist appears after the first segment
                if (self._dir / "live.m3u8").exists():
                    break
                await asyncio.sleep(0.1)
        return self

    async def _fan_out(self) -> None:
        assert self._ffmpeg is not None and self._ffmpeg.stdout is not None
        while chunk := await self._ffmpeg.stdout.read(2048):
            for writer in list(self.listeners):
                writer.write(chunk)
                self.sent += len(chunk)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode().lstrip("/").split("?")[0]
            self.connections += 1
            self.requests.append(request)
            if self.fmt == "hls":
                return await self._file(writer, path)
            writer.write(
                f"HTTP/1.0 200 OK\r\nContent-Type: {CONTENT_TYPES[self.fmt]}\r\n\r\n".encode()
            )
            self.listeners.add(writer)
            try:
                await reader.read()  # until the listener leaves
            finally:
                self.listeners.discard(writer)
        writer.close()

    async def _file(self, writer: asyncio.StreamWriter, name: str) -> None:
        path = self._dir / Path(name).name
        if not path.is_file():
            writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        else:
            data = path.read_bytes()
            kind = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp2t"
            head = f"HTTP/1.0 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
            writer.write(head.encode() + b"\r\n" + data)
            self.sent += len(data)
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        """The station dies: no more audio, open connections cut, new ones refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self.listeners):
            writer.transport.abort()
        self.listeners.clear()
        if self._ffmpeg is not None and self._ffmpeg.returncode is None:
            self._ffmpeg.kill()
            await self._ffmpeg.wait()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for old in self._dir.glob("*"):
            old.unlink()

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
