"""A fleet split across processes: shards cover every node once, and the parent reports what
each node costs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.processes import parse_shard
from tests.conftest import running_controller, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_shards_are_checked():
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.mark.slow
async def test_fleet_in_two_processes_connects_every_node_and_reports_usage(
    make_settings, tmp_path
):
    async with running_controller(make_settings()) as ctl:
        assert (
            await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
        ).status_code == 201
        folder = tmp_path / "fleet"
        folder.mkdir()
        for i in range(6):
            r = await ctl.api("POST", "/nodes", json={"id": f"p{i}", "name": "p", "area_id": "xa"})
            assert r.status_code == 201
            (folder / f"p{i}.json").write_text(json.dumps(r.json()["provisioning"]))
        proc = subprocess.Popen(  # noqa: ASYNC220 (a real process tree is the point)
            [
                sys.executable,
                "-m",
                "firmware_sim",
                "--provision-dir",
                str(folder),
                "--processes",
                "2",
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:

            async def online() -> bool:
                nodes = (await ctl.api("GET", "/nodes")).json()["items"]
                return sum(n["status"] == "online" for n in nodes) == 6

            await wait_for(online, 40, "all six nodes online through two processes")
            line = ""
            while "6/6 nodes connected in 2 processes" not in line:
                line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
                assert line, "the parent stopped reporting"
            assert "KB per node" in line and "of a core per node" in line
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        assert proc.returncode == 0
