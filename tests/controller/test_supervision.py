"""Background work is supervised: a loop that crashes or is killed is logged, counted in
/metrics, shown by /api/v1/ready, and restarted with back-off; the controller keeps working."""

from __future__ import annotations

import asyncio

import pytest

from controller.core.periodic import Periodic
from controller.core.supervisor import Supervisor
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune


async def test_a_killed_loop_is_restarted_reported_and_works_again(make_settings):
    async with running_controller(make_settings()) as ctl:
        supervisor = ctl.service.supervisor
        killed = supervisor.current["ingest"]
        assert not killed.done() and supervisor.health["ingest"].running
        killed.cancel()  # killed from outside, as a crash would end it

        def restarted() -> bool:
            task = supervisor.current["ingest"]
            return task is not killed and not task.done() and supervisor.health["ingest"].running

        await wait_for(restarted, 30, "the ingestion loop to run again")
        assert supervisor.health["ingest"].restarts == 1
        assert "killed" in (supervisor.health["ingest"].last_error or "")

        r = await ctl.http.get(f"{ctl.base_url}/api/v1/ready")
        assert r.status_code == 200, r.text
        assert r.json()["restarts"] == {"ingest": 1} and r.json()["failing"] == []
        metrics = await ctl.http.get(
            f"{ctl.base_url}/metrics", headers={"Authorization": f"Bearer {ctl.token}"}
        )
        assert metrics.status_code == 200
        assert 'radio_task_restarts_total{task="ingest"} 1.0' in metrics.text
        assert 'radio_task_running{task="ingest"} 1.0' in metrics.text

        # The new loop writes what nodes report: a node comes online in the registry.
        configs = await make_commune(ctl, 1)
        async with fleet_of(configs):

            async def online() -> bool:
                r = await ctl.api("GET", "/nodes/n0")
                return r.status_code == 200 and r.json().get("status") == "online"

            await wait_for(online, 30, "the node's state to be stored by the new loop")


async def test_a_crash_is_retried_with_back_off_and_shown_while_it_waits() -> None:
    supervisor = Supervisor(backoff_min_s=0.05, backoff_max_s=0.2)
    attempts: list[int] = []
    release = asyncio.Event()

    async def flaky() -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)} failed")
        await release.wait()  # the third attempt runs until told otherwise

    done: list[str] = []

    async def one_off() -> None:
        done.append("ran")

    supervisor.start("flaky", flaky)
    supervisor.start("one-off", one_off, restart=False)
    try:
        await wait_for(lambda: len(attempts) == 3, 10, "the third attempt")
        health = supervisor.health["flaky"]
        assert health.restarts == 2 and health.last_error == "RuntimeError: attempt 2 failed"
        await wait_for(lambda: health.running, 10, "the third attempt to be running")
        assert supervisor.failing() == []
        assert done == ["ran"] and supervisor.health["one-off"].restarts == 0
        with pytest.raises(ValueError):
            supervisor.start("flaky", flaky)
    finally:
        await supervisor.stop()
    assert all(t.done() for t in supervisor.current.values())


async def test_a_periodic_job_runs_once_on_demand_and_survives_a_failed_run() -> None:
    runs: list[str] = []

    async def once() -> None:
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    job = Periodic("test job", 0.01, once, jitter=0)
    task = asyncio.create_task(job.run())
    try:
        await wait_for(lambda: job.runs >= 2, 10, "two good runs after the failed one")
        assert job.failures == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await job.run_once()  # what tests call instead of waiting for the interval
    assert runs.count("run") >= 4
