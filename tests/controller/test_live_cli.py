"""`radio live --from FILE`: a mixing desk's recording goes live from the command line, in real
time, to the nodes, and the broadcast ends when the file does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from audio.ffmpeg import ffmpeg_exe
from controller.core.models import LiveBroadcast
from tests.conftest import TEST_PASSWORD, running_controller, wait_for
from tests.controller.test_broadcast_e2e import deliveries, fleet_of, make_commune
from tests.controller.test_live import live_run


@pytest.mark.slow
async def test_radio_live_from_a_file(make_settings, tmp_path):
    recording = tmp_path / "desk.wav"
    # 8 s: nodes tune in a moment after it goes on air (longer under load); 2 s must reach them.
    make = [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=330:d=8"]
    await asyncio.to_thread(subprocess.run, [*make, str(recording)], check=True)
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 2)
        await ctl.login_as_new("chu-tich", "officer", "xa-a")
        async with fleet_of(configs) as fleet:
            await wait_for(lambda: fleet.summary().connected == 2, 20, "nodes to connect")
            env = {**os.environ, "RADIO_PASSWORD": TEST_PASSWORD}
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "radio.cli", "live", "--from", str(recording),
                "--areas", "thon-1,thon-2", "--user", "chu-tich", "--url", ctl.base_url,
                "--priority", "priority", "--title", "Tin khẩn từ bàn trộn",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(cli.communicate(), 60)
            text = out.decode()
            assert cli.returncode == 0, text
            assert "on air: live" in text and "ended" in text
            live_id = text.split("on air: live ", 1)[1].split(" ", 1)[0]
            runs = [live_run(n, live_id) for n in fleet.nodes]
            # Seconds of it reached both nodes (the first instants go before they tune in).
            assert all(r is not None and r.audio_ms > 2000 for r in runs), runs
            with ctl.service.db.session() as s:
                live = s.get(LiveBroadcast, live_id)
            assert live.status == "ended" and live.ended_by == "chu-tich" and live.source == "mp3"

            async def finished() -> bool:
                counts = (await deliveries(ctl, live.schedule_id))["counts"]
                return counts == {"finished": 2}

            await wait_for(finished, 15, "both nodes to finish the live broadcast")


async def test_radio_live_refuses_a_wrong_password_and_a_missing_file(make_settings, tmp_path):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        env = {**os.environ, "RADIO_PASSWORD": "wrong-password-1", "COLUMNS": "300"}
        base = [sys.executable, "-m", "radio.cli", "live", "--user", "root", "--areas", "xa-a"]
        done = await asyncio.to_thread(
            subprocess.run,
            [*base, "--from", str(tmp_path / "none.wav"), "--url", ctl.base_url],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode != 0 and "no such file" in done.stdout + done.stderr
        wav = tmp_path / "x.wav"
        wav.write_bytes(b"RIFF")
        done = await asyncio.to_thread(
            subprocess.run,
            [*base, "--from", str(wav), "--url", ctl.base_url],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 1 and "login refused (401)" in done.stderr
