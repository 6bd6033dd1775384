"""Firmware updates of a real node (single-node mode) with its install hook, for real on this
machine: releases unpacked from a tar image served over HTTP, the `current` symlink switched,
the service restarted by a real script, and a release that does not come online rolled back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import fwsim_support
import pytest
from fwsim_support import Controller, MediaServer, until

import firmware_sim
from protocol import CommandAck

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

CODE = Path(firmware_sim.__file__).resolve().parents[1]  # the code under test

RUN_NODE = """#!/bin/sh
# The service's command, as the release ships it (the code under test stands in for its venv).
export PYTHONPATH="{code}"
exec "{python}" -m firmware_sim --single --provision "{svc}/provision.json" \\
  --cache-dir "{svc}/cache" --install-dir "{install}" --restart-command "{svc}/restart.sh" \\
  --update-confirm-s "$(cat "{svc}/confirm_s")" --audio-backend null --audio-device null
"""

BROKEN_RUN_NODE = """#!/bin/sh
echo "this release cannot start" >&2
exit 1
"""

# Stands in for `systemctl --no-block restart radio-node`: stop the node that runs, then start
# the release `current` points at, in the background.
RESTART = """#!/bin/sh
svc="{svc}"
if [ -f "$svc/node.pid" ]; then
  pid=$(cat "$svc/node.pid")
  kill -TERM "$pid" 2>/dev/null
  while [ -e "/proc/$pid" ] && ! grep -q zombie "/proc/$pid/status" 2>/dev/null; do sleep 0.05; done
fi
echo "start $(readlink "{install}/current")" >> "$svc/restarts.log"
(cd "{install}/current" && exec ./run-node) >> "$svc/node.log" 2>&1 &
echo $! > "$svc/node.pid"
"""


def release_image(files: dict[str, tuple[str, int]]) -> bytes:
    """A gzip'd tar of name -> (text, mode)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def acks_of(controller: Controller, cmd_id: str) -> list[CommandAck]:
    return [a for a in controller.acks("n1") if a.cmd_id == cmd_id]


def final(controller: Controller, cmd_id: str) -> CommandAck | None:
    return next((a for a in acks_of(controller, cmd_id) if a.final), None)


async def listening(controller: Controller, heartbeats_before: int) -> None:
    """A node says `online` before it subscribes (docs/protocol.md); its first heartbeat comes
    after: from then on a command reaches it (one sent in between is lost on a busy machine)."""
    await until(
        lambda: len(controller.telemetry("n1")) > heartbeats_before,
        timeout=120,
        what="a heartbeat of the node that came online",
    )


async def test_an_update_is_installed_as_a_release_and_a_dead_one_rolled_back(
    controller: Controller, media: MediaServer, prefix: str, tmp_path: Path
) -> None:
    svc, install = tmp_path / "svc", tmp_path / "opt" / "radio-node"
    svc.mkdir()
    run_node = RUN_NODE.format(python=sys.executable, code=CODE, svc=svc, install=install)
    (svc / "restart.sh").write_text(RESTART.format(svc=svc, install=install))
    (svc / "restart.sh").chmod(0o755)
    (svc / "confirm_s").write_text("60")
    (svc / "provision.json").write_text(
        json.dumps(
            {
                "node_id": "n1",
                "mqtt_url": f"mqtt://127.0.0.1:{fwsim_support.broker_port()}",
                "topic_prefix": prefix,
                "areas": ["village-1"],
                "controller_keys": [controller.public_key],
                "client_id": f"{prefix}-n1",
                "media_token": "n1.update-token",
                "media_token_url": media.url("media/token"),
            }
        )
    )
    # The running version, installed by hand as docs/node-install.md says.
    first = install / "releases" / "1.0"
    first.mkdir(parents=True)
    (first / "run-node").write_text(run_node)
    (first / "run-node").chmod(0o755)
    (first / "VERSION").write_text("1.0\n")
    os.symlink("releases/1.0", install / "current")
    await asyncio.to_thread(subprocess.run, [svc / "restart.sh"], check=True)
    try:
        await until(
            lambda: any(s.firmware == "1.0" for s in controller.states("n1")),
            timeout=60,
            what="release 1.0 online",
        )
        await listening(controller, 0)

        # A good release: downloaded with the token, unpacked, switched to, confirmed online.
        good = release_image({"run-node": (run_node, 0o755), "share/notes.txt": ("2.0\n", 0o644)})
        media.files["fw-2.0.tar.gz"] = good
        cmd = await controller.command(
            "n1",
            "update_firmware",
            {
                "version": "2.0",
                "url": media.url("fw-2.0.tar.gz"),
                "sha256": hashlib.sha256(good).hexdigest(),
                "size": len(good),
            },
        )
        await until(lambda: final(controller, cmd), timeout=90, what="2.0's final ack")
        done = final(controller, cmd)
        assert done is not None and done.ok, done
        assert (done.stage, done.firmware, done.detail) == (
            "done",
            "2.0",
            "updated from 1.0 to 2.0",
        )
        assert [a.stage for a in acks_of(controller, cmd)] == [
            "downloading",
            "verifying",
            "installing",
            "rebooting",
            "done",
        ]
        assert media.auth == ["Bearer n1.update-token"]
        assert os.readlink(install / "current") == "releases/2.0"
        assert (install / "current" / "share" / "notes.txt").read_text() == "2.0\n"
        assert (install / "current" / "VERSION").read_text() == "2.0\n"
        assert not (install / "update.json").exists()
        assert sorted(p.name for p in (install / "releases").iterdir()) == ["1.0", "2.0"]
        online = [s.firmware for s in controller.states("n1") if s.status == "online"]
        assert online == ["1.0", "2.0"]

        # A release that cannot start: the watch puts 2.0 back and restarts it, and 2.0 says so.
        # The broken release never confirms, however long the window; 20 s leaves a good one
        # (2.0 started again after the rollback) time to confirm on a busy machine.
        (svc / "confirm_s").write_text("20")
        dead = release_image({"run-node": (BROKEN_RUN_NODE, 0o755)})
        media.files["fw-3.0.tar.gz"] = dead
        # 2.0 read confirm_s when it started (60 s); restart it so it reads 20 s.
        await asyncio.to_thread(subprocess.run, [svc / "restart.sh"], check=True)
        await until(
            lambda: (
                [s.firmware for s in controller.states("n1") if s.status == "online"][-1:]
                == ["2.0"]
                and len([s for s in controller.states("n1") if s.status == "online"]) == 3
            ),
            timeout=60,
            what="2.0 online again",
        )
        await listening(controller, len(controller.telemetry("n1")))
        cmd = await controller.command(
            "n1",
            "update_firmware",
            {
                "version": "3.0",
                "url": media.url("fw-3.0.tar.gz"),
                "sha256": hashlib.sha256(dead).hexdigest(),
                "size": len(dead),
            },
        )
        await until(lambda: final(controller, cmd), timeout=240, what="3.0's final ack")
        failed = final(controller, cmd)
        assert failed is not None and not failed.ok
        assert (failed.stage, failed.firmware) == ("failed", "2.0")
        assert failed.detail == "version 3.0 did not come online within 20 s: rolled back to 2.0"
        assert os.readlink(install / "current") == "releases/2.0"
        assert not (install / "update.json").exists()
        starts = (svc / "restarts.log").read_text().splitlines()
        assert starts[-3:] == ["start releases/2.0", "start releases/3.0", "start releases/2.0"]
        assert "this release cannot start" in (svc / "node.log").read_text()
        assert "rolled_back" in (install / "update-watch.log").read_text()
    finally:
        # A watch still waiting (a failure above) then ends without restarting anything.
        (install / "update.json").unlink(missing_ok=True)
        pid = int((svc / "node.pid").read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        await until(lambda: gone(pid), timeout=20, what="the node to stop")


def gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
