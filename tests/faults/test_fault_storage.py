"""Storage faults: a full disk under the media store, and a database that goes away for a while.
Each is answered clearly (507, 503), nothing is half-saved, and nothing reported is lost."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlmodel import func, select

from controller.core.models import Announcement, NodeEventRecord
from tests.clocks import SteppedClock
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import announce, fleet_of, make_commune, schedule_at
from tests.faults.tcp_proxy import ThreadedProxy


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted where the controller keeps its data."""
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def announcements(ctl) -> int:  # type: ignore[no-untyped-def]
    with ctl.service.db.session() as s:
        return int(s.exec(select(func.count()).select_from(Announcement)).one())


@pytest.mark.slow
async def test_full_disk_refuses_clearly_and_saves_nothing_half(make_settings, small_disk):
    settings = make_settings(data_dir=small_disk)
    async with running_controller(settings) as ctl:
        # Fill the disk but a little, leaving the database room to work.
        filler = small_disk / "filler"
        free = shutil.disk_usage(small_disk).free
        filler.write_bytes(b"\0" * max(0, free - 48 * 1024))
        before = announcements(ctl)
        text = "Thông báo về lịch cắt điện ngày mai trên toàn xã. " * 8
        r = await ctl.api("POST", "/announcements", json={"title": "Cắt điện", "text": text})
        assert r.status_code == 507, r.text
        assert "no space left" in r.json()["detail"]
        assert announcements(ctl) == before
        leftovers = [p for p in (settings.media_dir / "tmp").glob("*") if p.is_file()]
        assert not leftovers, leftovers
        # Still serving; with space again the same request succeeds.
        assert (await ctl.api("GET", "/health")).status_code == 200
        filler.unlink()
        r = await ctl.api("POST", "/announcements", json={"title": "Cắt điện", "text": text})
        assert r.status_code == 201, r.text
        assert ctl.service.store.has(r.json()["media_sha256"])


@pytest.mark.slow
async def test_database_briefly_unavailable(make_settings, postgres_url):
    u = urlparse(postgres_url)
    proxy = ThreadedProxy(u.port or 5432, u.hostname or "127.0.0.1")
    url = postgres_url.replace(f"{u.hostname}:{u.port or 5432}", f"127.0.0.1:{proxy.port}")
    settings = make_settings(database_url=url, heartbeat_s=1)
    clock = SteppedClock()
    try:
        async with running_controller(settings, clock) as ctl:
            configs = await make_commune(ctl, 3)
            async with fleet_of(configs, clock) as fleet:
                await wait_for(lambda: fleet.summary().connected == 3, 20, "nodes to connect")
                ann = await announce(ctl)
                # Held still until the database is gone: air time cannot come first.
                clock.pause()
                sched = await schedule_at(ctl, ann["id"], clock.now_ms() + 4000, areas=["xa-a"])
                await wait_for(
                    lambda: all(n.media.is_ready(ann["media_sha256"]) for n in fleet.nodes),
                    30,
                    "every node to hold the media",
                )
                proxy.cut()  # the database goes away across the air time
                await wait_for(lambda: not proxy.proxy.up, 10, "the database link to be cut")
                r = await ctl.api("GET", "/nodes")
                assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
                assert not any(n.played for n in fleet.nodes)
                clock.resume()
                await wait_for(
                    lambda: all(n.played for n in fleet.nodes),
                    ann["duration_s"] + 60,
                    "every node to play while the database is away",
                )
                assert all(len(n.played) == 1 for n in fleet.nodes)
                proxy.restore()

                def recorded() -> int:
                    with ctl.service.db.session() as s:
                        return int(
                            s.exec(
                                select(func.count())
                                .select_from(NodeEventRecord)
                                .where(NodeEventRecord.type == "playback_finished")
                            ).one()
                        )

                # Ingestion kept the reports and wrote them once the database came back.
                await wait_for(lambda: recorded() == 3, 40, "the reports kept during the outage")
                r = await ctl.api("GET", f"/schedules/{sched['id']}/deliveries")
                assert r.status_code == 200 and r.json()["counts"] == {"finished": 3}
    finally:
        proxy.stop()
