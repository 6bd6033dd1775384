"""The conformance kit passes our node: the simulated node in process, and single-node mode
(the software a Raspberry Pi runs) launched by its command line, restarts included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conformance_support import InProcessNode

from conformance import CHECKS, KitSettings, run_conformance

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


async def test_our_simulated_node_passes_every_check(broker_url: str, tmp_path: Path) -> None:
    node = InProcessNode()
    report = await run_conformance(KitSettings(broker_url=broker_url, work_dir=tmp_path), node)
    print(report.text())
    assert report.failed == [], report.text()
    assert [r.id for r in report.results] == [c.id for c in CHECKS]
    assert node.starts == 2  # started, and restarted by the restart check
    assert all(r.evidence for r in report.results)

    # Graded again in the same place (a manufacturer re-running the kit): a fresh node again.
    again = await run_conformance(
        KitSettings(broker_url=broker_url, work_dir=tmp_path),
        InProcessNode(),
        ["alert_preempts_and_resumes", "finished_alert_after_restart"],
    )
    assert again.passed, again.text()


def test_single_node_mode_passes_through_the_command_line(broker_url: str, tmp_path: Path) -> None:
    """`radio conformance` starts the real node's command, restarts it, and writes its result."""
    node = f"{sys.executable} -m firmware_sim --single --provision {{provision}} "
    node += "--cache-dir {cache_dir} --audio-backend null --audio-device null"
    result_file = tmp_path / "result.json"
    run = subprocess.run(
        [sys.executable, "-m", "radio", "conformance", "--broker", broker_url,
         "--node-command", node, "--work-dir", str(tmp_path / "run"),
         "--json", str(result_file), "--timeout", "20"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "17 checks: 17 passed, 0 failed" in run.stdout
    result = json.loads(result_file.read_text())
    assert result["passed"] is True and result["failed"] == []
    assert [c["id"] for c in result["checks"]] == [c.id for c in CHECKS]
    # The node really was a process of its own, restarted by the kit: two starts in its log.
    log = (tmp_path / "run" / "node.log").read_text()
    assert log.count("connected (boot") >= 3  # start, reboot command, restart


def test_a_node_that_never_comes_online_fails_every_check_saying_so(
    broker_url: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "radio", "conformance", "--broker", broker_url,
         "--node-command", "true {provision}", "--work-dir", str(tmp_path),
         "--check", "timeline_in_order", "--check", "refuses_unsigned", "--timeout", "2",
         "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["failed"] == ["timeline_in_order", "refuses_unsigned"]
    assert all("node to come online" in c["reason"] for c in result["checks"])


def test_an_unknown_check_is_refused(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "radio", "conformance", "--node-command", "x {provision}",
         "--check", "no_such_check", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "unknown checks ['no_such_check']" in run.stderr
