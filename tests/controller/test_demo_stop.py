"""Ctrl-C stops `radio demo` cleanly, as a new user stops it: the broker, the controller and the
twenty nodes go down without a traceback or an incomplete broker shutdown. (How long it takes
is measured in docs/benchmarks.md, not asserted here.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RADIO_DATA_DIR": str(tmp_path / "data"),
        "RADIO_HTTP_PORT": str(free_port()),
        "RADIO_MQTT_EMBEDDED_PORT": str(free_port()),
        "RADIO_DEMO": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RADIO_DATABASE_URL", None)  # the demo is the embedded default: SQLite
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "radio.cli", "demo", "--lead-s", "600"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300  # it renders its speech first
            while "Press Ctrl-C to stop" not in log.read_text(errors="replace"):
                assert proc.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the demo did not come up"
                time.sleep(0.1)  # polling the log for the line that proves it is up
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    "still running 60 s after Ctrl-C:\n" + log.read_text(errors="replace")[-3000:]
                )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    # 130 is Ctrl-C's exit status (128 + SIGINT), as shells and the command line give it.
    assert code in (0, 130, -signal.SIGINT), (code, text[-2000:])
    assert "Traceback" not in text, text[-3000:]
    assert "shutdown incomplete" not in text, text[-3000:]
