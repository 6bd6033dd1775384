"""One MP3 stream, many HTTP listeners: whatever one encoder produces goes to every node.

Bytes are cut into whole frames before they go out, so a listener that joins late starts on a
frame and silence can be slipped in between frames. Each listener has a bounded queue: one that
falls this far behind (a node on a bad link) is cut off and reconnects at the live edge, rather
than holding the others back or filling the controller's memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from protocol.audio_frames import FrameReader

QUEUE_CHUNKS = 200  # about 5 s of 24 ms frames published one by one


class StreamHub:
    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: set[asyncio.Queue[bytes | None]] = set()
        self._reader = FrameReader()
        self.closed = False
        self.started = asyncio.Event()  # the first frames are here
        self.ended = asyncio.Event()
        self.bytes_in = 0
        self.frames = 0
        self.audio_ms = 0.0
        self.listened = 0  # listeners ever connected
        self.cut_off = 0  # listeners dropped for being too slow
        self.last_frame = time.monotonic()

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, data: bytes) -> None:
        """Encoder output, in any chunking; whole frames go out."""
        if self.closed:
            return
        self.bytes_in += len(data)
        heard = self._reader.audio_ms
        frames = self._reader.feed(data)
        if not frames:
            return
        self.frames += len(frames)
        self.audio_ms += self._reader.audio_ms - heard
        self.last_frame = time.monotonic()
        self.started.set()
        chunk = b"".join(frames)
        for queue in list(self._listeners):
            if queue.full():
                self._listeners.discard(queue)
                self.cut_off += 1
                _end(queue)
            else:
                queue.put_nowait(chunk)

    def close(self) -> None:
        """The stream is over: every listener's response ends cleanly."""
        if self.closed:
            return
        self.closed = True
        for queue in self._listeners:
            _end(queue)
        self._listeners.clear()
        self.started.set()
        self.ended.set()

    async def listen(self) -> AsyncIterator[bytes]:
        """The stream from now on, until it is closed (or this listener falls behind)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)
        if self.closed:
            return
        self._listeners.add(queue)
        self.listened += 1
        try:
            ended = False
            while not ended and (chunk := await queue.get()) is not None:
                # What queued up meanwhile goes out in one write: no delay when the server keeps
                # up, and far fewer writes when it is busy serving hundreds of nodes.
                parts = [chunk]
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        ended = True
                        break
                    parts.append(more)
                yield b"".join(parts)
        finally:
            self._listeners.discard(queue)


def _end(queue: asyncio.Queue[bytes | None]) -> None:
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(None)
