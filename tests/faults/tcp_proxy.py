"""A TCP proxy on a free port whose link can be cut and restored: a real network fault for one
path (node ↔ broker, controller ↔ database, node ↔ media server) without touching the rest."""

from __future__ import annotations

import asyncio
import contextlib


def free_port() -> int:
    """A reserved port (tests/conftest.py): never handed to another test process meanwhile."""
    from tests.conftest import free_port as reserved

    return reserved()


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.up = True
        self.connections = 0
        self.bytes = 0
        self.limit_bytes: int | None = None  # cut each connection after this many bytes
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore`."""
        self.up = False
        for w in list(self._links):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.up = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._links |= {writer, up_w}
        sent = [0]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while self.up and (data := await src.read(65536)):
                    self.bytes += len(data)
                    sent[0] += len(data)
                    dst.write(data)
                    await dst.drain()
                    if self.limit_bytes is not None and sent[0] >= self.limit_bytes:
                        break
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                for w in (writer, up_w):
                    with contextlib.suppress(Exception):
                        w.transport.abort()
                    self._links.discard(w)

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


class ThreadedProxy:
    """A `TcpProxy` on its own thread and event loop, for paths that the code under test uses
    from blocking calls on its own loop (a database driver), which would starve a proxy
    sharing that loop."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        import threading

        self.proxy = TcpProxy(target_port, target_host)
        self.port = self.proxy.port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(5)

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.cut)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.restore)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
