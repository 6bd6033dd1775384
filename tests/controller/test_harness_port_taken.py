"""The test harness itself: a controller that cannot bind its port fails its own test only."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import running_controller


async def test_a_taken_port_fails_one_start_and_leaves_the_loop_working(make_settings):
    settings = make_settings()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.http_port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="could not start"):
            async with running_controller(settings):
                pass
    await asyncio.sleep(0.01)  # the loop still runs
    async with running_controller(settings) as ctl:
        r = await ctl.api("GET", "/health")
        assert r.status_code == 200, r.text
