"""Time from a followed feed's poll to the mapped village's loudspeakers sounding the warning,
beside the same warning posted straight to `POST /api/v1/alerts/cap` in the same run.

One controller (embedded broker, SQLite) and simulated nodes in this process; an agency's Atom
feed on 127.0.0.1. Each round puts a new Extreme warning (its own text, so its speech is
rendered, not a cache hit) in the feed, polls the feed (what the periodic job does when the
feed's interval has passed) and waits until every loudspeaker of the mapped village sounds it;
then the same with a warning posted to the API. Each alert is cancelled before the next round.

Run: .venv/bin/python bench/bench_cap_feed.py [--rounds 5] [--nodes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.core.config import Settings
from tests.cap_feed_server import FeedServer, atom
from tests.conftest import free_port, running_controller, wait_for
from tests.controller.test_alerts import sounding
from tests.controller.test_broadcast_e2e import fleet_of, make_commune
from tests.controller.test_cap_feeds_e2e import STORM, dated


async def until_sounding(fleet, node_ids: set[str], alert_id: str | None, t0: float) -> float:
    while True:
        playing = {sounding(n) for n in fleet.nodes if n.node_id in node_ids}
        alerted = len(playing) == 1 and (next(iter(playing)) or "").startswith("alert:")
        if alerted and (alert_id is None or playing == {f"alert:{alert_id}"}):
            return time.perf_counter() - t0
        await asyncio.sleep(0.01)


async def main(rounds: int, nodes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            demo=True,
            secret_key="bench-secret-key-0123456789abcdef",
            topic_prefix=f"b{uuid.uuid4().hex[:8]}",
            heartbeat_s=2,
            offline_after_s=8,
            prerender_alert_templates=False,
            opening_chime=False,
            mqtt_embedded_port=free_port(),
            http_port=free_port(),
            cap_feed_allowed_hosts="127.0.0.1",
        )
        async with FeedServer() as agency, running_controller(settings) as ctl:
            configs = await make_commune(ctl, nodes)
            village = {c.node_id for c in configs if int(c.node_id[1:]) % 2 == 0}
            await ctl.api(
                "PUT",
                "/cap/geocodes",
                json={"value_name": "VN-ADM", "value": "18145", "area_id": "thon-1"},
            )
            await ctl.api("POST", "/cap/rules", json={"name": "auto", "action": "auto"})
            agency.put("/f.atom", atom([]))
            feed = (
                await ctl.api(
                    "POST",
                    "/cap/feeds",
                    json={"name": "f", "url": agency.url("/f.atom"), "enabled": False},
                )
            ).json()
            feed_s: list[float] = []
            api_s: list[float] = []
            async with fleet_of(configs) as fleet:
                await wait_for(lambda: fleet.summary().connected == nodes, 30, "nodes")
                for i in range(rounds):
                    now = datetime.now(UTC)
                    doc = dated(
                        STORM,
                        now,
                        **{
                            "BAO-13-001": f"BAO-F{i}",
                            "bão số 13": f"bão số {20 + i}",
                        },
                    )
                    agency.put(f"/c{i}.xml", doc)
                    agency.put("/f.atom", atom([(f"c{i}", f"/c{i}.xml")]))
                    t0 = time.perf_counter()
                    result = await ctl.service.warning_feeds.poll(feed["id"])
                    assert result.taken, result
                    feed_s.append(await until_sounding(fleet, village, None, t0))
                    with ctl.service.db.session() as s:
                        from controller.core.models import CapWarning

                        w = s.get(CapWarning, result.taken[0])
                        alert_id = w.alert_id if w else None
                    await ctl.api("POST", f"/alerts/{alert_id}/cancel")
                    direct = dated(
                        STORM,
                        now,
                        **{
                            "BAO-13-001": f"BAO-D{i}",
                            "bão số 13": f"bão số {40 + i}",
                            "<value>18145</value>": "<value>thon-1</value>",
                        },
                    )
                    t0 = time.perf_counter()
                    r = await ctl.api(
                        "POST",
                        "/alerts/cap",
                        content=direct,
                        headers={"Content-Type": "application/xml"},
                    )
                    assert r.status_code == 201, r.text
                    api_s.append(await until_sounding(fleet, village, r.json()["id"], t0))
                    await ctl.api("POST", f"/alerts/{r.json()['id']}/cancel")
                    await wait_for(
                        lambda: (
                            not any((sounding(n) or "").startswith("alert:") for n in fleet.nodes)
                        ),
                        30,
                        "the loudspeakers to stop",
                    )
    print(f"{rounds} rounds, {nodes} nodes ({len(village)} in the mapped village)")
    print("| path | p50, s | max, s |")
    print("|---|---|---|")
    for name, values in (
        ("feed poll → village sounding", feed_s),
        ("POST /alerts/cap → village sounding (baseline)", api_s),
    ):
        print(f"| {name} | {statistics.median(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.nodes))
