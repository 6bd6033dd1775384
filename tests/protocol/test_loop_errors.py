"""The loop's error handler for a closing MQTT connection: the race in which paho asks the loop
to watch a socket already closed is one debug line; every other error is still reported."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest

from protocol.aio import quiet_closed_socket_races


def closed_descriptor() -> int:
    """A file descriptor number that names nothing open (as a socket's, once closed)."""
    fd = 4096
    while True:
        try:
            os.fstat(fd)
        except OSError:
            return fd
        fd += 1


async def test_a_closed_socket_race_is_quiet_and_other_errors_still_speak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    seen: list[str] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context["message"]))
    try:
        quiet_closed_socket_races()
        caplog.set_level(logging.DEBUG, logger="protocol.aio")
        # The race itself, as paho schedules it from its thread: add_writer as a callback,
        # run after the socket has been closed.
        fd = closed_descriptor()
        loop.call_soon_threadsafe(loop.add_writer, fd, lambda: None)
        done = asyncio.Event()
        loop.call_soon(done.set)
        await done.wait()
        assert seen == []
        assert any("closed before the loop could watch it" in r.message for r in caplog.records)

        # The same race when the number already names a newer socket: the loop still holds
        # the old one's registration, which the kernel dropped with it. The newer socket is
        # watched all the same: what it receives is read.
        old, peer = socket.socketpair()
        newer, newer_peer = socket.socketpair()
        fd = old.fileno()
        try:
            loop.add_writer(fd, lambda: None)
            old.close()
            os.dup2(newer.fileno(), fd)  # what the next socket opened gets
            readable = asyncio.Event()
            loop.call_soon_threadsafe(loop.add_reader, fd, readable.set)
            newer_peer.send(b"x")
            await asyncio.wait_for(readable.wait(), 30)
            assert seen == []
        finally:
            loop.remove_writer(fd)
            loop.remove_reader(fd)
            os.close(fd)
            for s in (newer, newer_peer, peer):
                s.close()

        # Anything else reaches the handler that was there before.
        done = asyncio.Event()

        def fails() -> None:
            done.set()
            raise RuntimeError("a real error")

        loop.call_soon(fails)
        await done.wait()  # the loop's handler ran within that callback, before this wakes
        assert len(seen) == 1 and "fails" in seen[0]
    finally:
        loop.set_exception_handler(before)
