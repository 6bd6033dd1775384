"""Reports for the province: a month of real broadcasts planned by the controller, reported by
nodes through ingestion, alerts confirmed, nodes going offline and alarms repaired; the report's
numbers match the playback log, a parent area is the sum of its children, the CSV and Excel
files read back, and a user sees only their areas."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import openpyxl
from sqlmodel import select

from controller.core.models import Alarm, Delivery, NodeStateChange
from protocol.messages import EventType, NodeEvent, NodeState, NodeStatus
from schedules.localtime import LOCAL_TZ
from tests.clocks import SteppedClock
from tests.conftest import running_controller, wait_for

AREAS = [
    ("tinh", "Tỉnh Thử", "province", None),
    ("huyen", "Huyện Thử", "district", "tinh"),
    ("xa-1", "Xã Một", "commune", "huyen"),
    ("xa-2", "Xã Hai", "commune", "huyen"),
    ("thon-1a", "Thôn 1A", "village", "xa-1"),
    ("thon-1b", "Thôn 1B", "village", "xa-1"),
    ("thon-2a", "Thôn 2A", "village", "xa-2"),
]
# n4 hangs on the commune itself: the commune's "own" loudspeaker.
NODES = [("n1", "thon-1a"), ("n2", "thon-1b"), ("n3", "thon-2a"), ("n4", "xa-2")]
H = 3_600_000


def local_ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ).timestamp() * 1000)


def additive(f: dict) -> tuple:
    return (
        f["nodes"],
        tuple(sorted(f["plays"].items())),
        tuple(sorted((k, round(v, 3)) for k, v in f["aired_s"].items())),
        f["plays_without_end"],
        f["not_played"],
        f["alert_targets"],
        f["alert_confirmed"],
        round(f["online_s"], 3),
        round(f["known_s"], 3),
        f["faults"],
        f["faults_cleared"],
        round(f["repair_s"], 3),
    )


def summed(rows: list[dict]) -> tuple:
    keys = set(rows[0]["plays"])
    return (
        sum(r["nodes"] for r in rows),
        tuple(sorted((k, sum(r["plays"][k] for r in rows)) for k in keys)),
        tuple(sorted((k, round(sum(r["aired_s"][k] for r in rows), 3)) for k in keys)),
        sum(r["plays_without_end"] for r in rows),
        sum(r["not_played"] for r in rows),
        sum(r["alert_targets"] for r in rows),
        sum(r["alert_confirmed"] for r in rows),
        round(sum(r["online_s"] for r in rows), 3),
        round(sum(r["known_s"] for r in rows), 3),
        sum(r["faults"] for r in rows),
        sum(r["faults_cleared"] for r in rows),
        round(sum(r["repair_s"] for r in rows), 3),
    )


async def test_a_month_of_broadcasts_reported_by_area(make_settings):
    start = local_ms(2026, 10, 31, 23)
    clock = SteppedClock(start - int(datetime.now(UTC).timestamp() * 1000))
    clock.pause()
    settings = make_settings(
        timeline_horizon_h=24 * 14, offline_after_s=10**8, stream_allowed_hosts="127.0.0.1"
    )
    async with running_controller(settings, clock) as ctl:
        for area_id, name, kind, parent in AREAS:
            body = {"id": area_id, "name": name, "kind": kind, "parent_id": parent}
            r = await ctl.api("POST", "/areas", json=body)
            assert r.status_code == 201, r.text
        for node_id, area in NODES:
            r = await ctl.api(
                "POST", "/nodes", json={"id": node_id, "name": node_id, "area_id": area}
            )
            assert r.status_code == 201, r.text
        ingest = ctl.service.ingest
        topics = ingest.topics
        await wait_for(lambda: {n for n, _ in NODES} <= ingest.known_nodes, 15)

        async def state(node_id: str, status: NodeStatus) -> None:
            before = changes()
            msg = NodeState(node_id=node_id, status=status, ts=clock.now_ms())
            ingest.handle(topics.node_state(node_id), msg.model_dump_json().encode())
            await wait_for(lambda: changes() > before, 15, "the state change to be written")

        def changes() -> int:
            with ctl.service.db.session() as s:
                return len(s.exec(select(NodeStateChange)).all())

        for node_id, _ in NODES:
            await state(node_id, NodeStatus.online)

        # What plays: a law bulletin every morning for the district, local news weekly in xa-1.
        ids = {}
        for key, title, category in (
            ("law", "Phổ biến luật", "policy_law"),
            ("news", "Tin xã", "local_news"),
        ):
            r = await ctl.api(
                "POST",
                "/announcements",
                json={"title": title, "text": f"{title} tháng mười một.", "category": category},
            )
            assert r.status_code == 201, r.text
            assert r.json()["category"] == category
            ids[key] = r.json()["id"]
        r = await ctl.api(
            "POST", "/announcements", json={"title": "x", "text": "x", "category": "gossip"}
        )
        assert r.status_code == 422 and "category" in r.text
        # A playlist once in xa-2: the law bulletin, then a minute of the provincial station.
        r = await ctl.api(
            "POST",
            "/playlists",
            json={
                "title": "Tiếp sóng đài tỉnh",
                "category": "policy_law",
                "items": [
                    {"kind": "announcement", "announcement_id": ids["law"]},
                    {"kind": "stream", "url": "http://127.0.0.1:9/tinh.mp3", "duration_ms": 60_000},
                ],
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["category"] == "policy_law"
        ids["relay"] = r.json()["id"]
        for ann, starts, rule, area in (
            (ids["law"], "2026-11-01T06:00:00", "FREQ=DAILY;COUNT=30", "huyen"),
            (ids["news"], "2026-11-02T18:00:00", "FREQ=WEEKLY;COUNT=5", "xa-1"),
            (ids["relay"], "2026-11-03T12:00:00", "FREQ=DAILY;COUNT=1", "xa-2"),
        ):
            r = await ctl.api(
                "POST",
                "/schedules",
                json={
                    "announcement_id": ann,
                    "starts_at": starts,
                    "rrule": rule,
                    "targets": {"areas": [area]},
                },
            )
            assert r.status_code == 201, r.text

        # The controller plans the month as its horizon (14 days) rolls on; n1 is off the air
        # for a day; an alert to xa-1 is confirmed by n1 after 2 s and by n2 after 5 s.
        await ctl.service.timelines.refresh(force=True)
        clock.skip_to(local_ms(2026, 11, 10))
        await state("n1", NodeStatus.lost)
        clock.skip_to(local_ms(2026, 11, 11))
        await state("n1", NodeStatus.online)
        clock.skip_to(local_ms(2026, 11, 14, 12))
        await ctl.service.timelines.refresh(force=True)
        clock.skip_to(local_ms(2026, 11, 15, 9))
        r = await ctl.api("POST", "/alerts", json={"areas": ["xa-1"], "template": "flood"})
        assert r.status_code == 201, r.text
        alert_id = r.json()["id"]
        issued = clock.now_ms()
        # The commune chairman speaks live to xa-2 an hour later.
        clock.skip_to(local_ms(2026, 11, 15, 10))
        r = await ctl.api(
            "POST", "/live", json={"title": "Chủ tịch xã phát biểu", "targets": {"areas": ["xa-2"]}}
        )
        assert r.status_code == 201, r.text
        live_id = r.json()["id"]
        clock.skip_to(local_ms(2026, 11, 15, 10, 2))
        r = await ctl.api("POST", f"/live/{live_id}/stop")
        assert r.status_code == 200, r.text

        # A speaker fault on n3, repaired in 3.5 hours.
        clock.skip_to(local_ms(2026, 11, 20, 8))
        with ctl.service.db.session() as s:
            ctl.service.alarms.raise_alarm(s, "n3", "speaker_fault", "loa im")
            s.commit()
        clock.skip_to(local_ms(2026, 11, 20, 11, 30))
        with ctl.service.db.session() as s:
            ctl.service.alarms.clear_alarm(s, "n3", "speaker_fault", "đã thay loa")
            s.commit()
        clock.skip_to(local_ms(2026, 11, 28, 12))
        await ctl.service.timelines.refresh(force=True)
        clock.skip_to(local_ms(2026, 12, 1, 1))

        # The nodes report what they played, through ingestion: n3 missed 5/11, n2 never
        # reported the end of its 7/11 broadcast.
        with ctl.service.db.session() as s:
            deliveries = s.exec(select(Delivery)).all()
        assert len(deliveries) == 30 * 4 + 5 * 2 + 2 * 2 + 2
        reports = []
        for d in deliveries:
            start = int(d.planned_start.replace(tzinfo=UTC).timestamp() * 1000)
            day = datetime.fromtimestamp(start / 1000, LOCAL_TZ).date()
            if d.node_id == "n3" and day == date(2026, 11, 5):
                continue
            reports.append((d.node_id, EventType.playback_started, d.item_id, start))
            if not (d.node_id == "n2" and day == date(2026, 11, 7)):
                # The live voice lasted two minutes on the nodes' clocks.
                end = start + (120_000 if d.planned_duration_ms == 0 else d.planned_duration_ms)
                reports.append((d.node_id, EventType.playback_finished, d.item_id, end))
        for node_id, delay in (("n1", 2000), ("n2", 5000)):
            reports.append((node_id, EventType.alert_received, alert_id, issued + delay))
            reports.append((node_id, EventType.alert_started, alert_id, issued + delay + 100))
            reports.append((node_id, EventType.alert_finished, alert_id, issued + delay + 60_100))
        for node_id, kind, item, ts in reports:
            ev = NodeEvent(id=str(uuid.uuid4()), node_id=node_id, ts=ts, type=kind, item_id=item)
            ingest.handle(topics.node(node_id, "events"), ev.model_dump_json().encode())

        def written() -> bool:
            with ctl.service.db.session() as s:
                ends = s.exec(select(Delivery).where(Delivery.finished_at != None)).all()  # noqa: E711
                return len(ends) == len(deliveries) - 2

        await wait_for(written, 30, "the reports to be written")
        # The alarm pass runs whenever ingestion commits, so a pass may still be judging the
        # month as it stood halfway through these reports. One more pass, after any in flight
        # (one at a time), leaves the alarms as they stay: the clock is paused, and a pass on
        # the same data decides nothing new, so every report below reads the same alarms.
        await asyncio.to_thread(ctl.service.health.evaluate)

        r = await ctl.api("GET", "/reports", params={"area_id": "huyen", "date": "2026-11-17"})
        assert r.status_code == 200, r.text
        rep = r.json()
        assert (rep["first_day"], rep["last_day"]) == ("2026-11-01", "2026-11-30")
        total = rep["total"]

        # The playback log, day by day, says the same.
        plays = aired = 0
        for n in range(30):
            day = date(2026, 11, 1) + timedelta(days=n)
            r = await ctl.api("GET", "/playback-log", params={"area_id": "huyen", "date": day})
            for row in r.json():
                if row["started_at"]:
                    plays += 1
                    if row["finished_at"]:
                        aired += (
                            datetime.fromisoformat(row["finished_at"])
                            - datetime.fromisoformat(row["started_at"])
                        ).total_seconds()
        law = 30 * 4 - 1 + 2  # n3 missed a morning; the playlist's bulletin on n3 and n4
        scheduled = ("policy_law", "local_news", "relay", "live")
        assert plays == law + 10 + 2 + 2 == sum(total["plays"][c] for c in scheduled)
        assert total["plays"]["policy_law"] == law and total["plays"]["local_news"] == 10
        assert total["plays"]["relay"] == 2 and total["aired_s"]["relay"] == 120
        assert total["plays"]["live"] == 2 and total["broadcasts"]["live"] == 1
        assert total["plays_without_end"] == 1
        assert total["not_played"] == 1  # n3 on 5/11, missed in the playback log too
        missed = await ctl.api(
            "GET", "/playback-log", params={"area_id": "huyen", "date": "2026-11-05"}
        )
        assert [r["node_id"] for r in missed.json() if r["state"] == "missed"] == ["n3"]
        assert round(aired, 3) == round(sum(total["aired_s"][c] for c in scheduled), 3)
        assert total["broadcasts"]["policy_law"] == 31 and total["broadcasts"]["local_news"] == 5
        assert total["broadcasts"]["relay"] == 1
        # The alert: two loudspeakers of xa-1, both confirmed, 60 s each of emergency.
        assert total["plays"]["emergency"] == 2 and total["aired_s"]["emergency"] == 120
        assert (total["alerts"], total["alert_targets"], total["alert_confirmed"]) == (1, 2, 2)
        assert total["confirmation_rate"] == 1
        assert (total["confirm_median_s"], total["confirm_max_s"]) == (3.5, 5)
        # Availability: four nodes known the whole month, n1 away one day.
        month_s = 30 * 24 * 3600
        assert total["known_s"] == 4 * month_s
        assert total["online_s"] == 4 * month_s - 24 * 3600
        # Faults: the alarm book's rows of November, the speaker repaired in 3.5 h.
        with ctl.service.db.session() as s:
            alarms = [a for a in s.exec(select(Alarm)).all() if a.raised_at.month == 11]
        assert total["faults"] == len(alarms) >= 1
        speaker = [a for a in alarms if a.kind == "speaker_fault"]
        assert len(speaker) == 1
        r = await ctl.api(
            "GET", "/reports/sources", params={"area_id": "xa-2", "date": "2026-11-17"}
        )
        faults = r.json()["faults"]
        assert [f["repair_s"] for f in faults if f["kind"] == "speaker_fault"] == [3.5 * 3600]

        # Every figure has its rows: the sources add up to the total.
        r = await ctl.api("GET", total["sources"].removeprefix("/api/v1"))
        src = r.json()
        assert len(src["plays"]) == sum(total["plays"].values())
        assert [(n["node_id"], n["state"]) for n in src["not_played"]] == [("n3", "missed")]
        assert {p["id"] for p in src["plays"] if p["source"] == "delivery"} <= {
            d.id for d in deliveries
        }
        assert round(sum(p["aired_s"] or 0 for p in src["plays"]), 3) == total["aired_s_total"]
        assert sum(u["online_s"] for u in src["uptime"]) == total["online_s"]

        # A parent is the sum of its children, at every level.
        assert [row["area_id"] for row in rep["rows"]] == ["xa-1", "xa-2"]
        assert summed(rep["rows"]) == additive(total)
        r = await ctl.api("GET", "/reports", params={"area_id": "xa-2", "date": "2026-11-17"})
        xa2 = r.json()
        assert [(row["area_id"], row["kind"]) for row in xa2["rows"]] == [
            ("thon-2a", "village"),
            ("xa-2", "own"),
        ]
        assert summed(xa2["rows"]) == additive(xa2["total"])
        assert additive(xa2["total"]) == additive(rep["rows"][1])
        r = await ctl.api("GET", "/reports", params={"area_id": "tinh", "date": "2026-11-17"})
        assert additive(r.json()["total"]) == additive(total)
        own = await ctl.api("GET", xa2["rows"][1]["sources"].removeprefix("/api/v1"))
        assert {p["node_id"] for p in own.json()["plays"]} == {"n4"}

        # Other periods: a day, and the week of the alert.
        r = await ctl.api(
            "GET", "/reports", params={"area_id": "huyen", "period": "day", "date": "2026-11-05"}
        )
        assert r.json()["total"]["plays"]["policy_law"] == 3
        r = await ctl.api(
            "GET", "/reports", params={"area_id": "huyen", "period": "week", "date": "2026-11-15"}
        )
        assert r.json()["first_day"] == "2026-11-09" and r.json()["total"]["alerts"] == 1
        r = await ctl.api("GET", "/reports", params={"area_id": "huyen", "period": "decade"})
        assert r.status_code == 422

        # CSV: a byte-order mark, Vietnamese headers; English on request.
        r = await ctl.api("GET", "/reports.csv", params={"area_id": "huyen", "date": "2026-11-17"})
        assert r.content.startswith(b"\xef\xbb\xbf")
        text = r.content.decode("utf-8-sig")
        head, *lines = text.splitlines()
        assert head.startswith("Mã khu vực,Khu vực,Cấp,Số cụm loa")
        assert lines[-1].startswith("huyen,Huyện Thử,tổng,4,")
        r = await ctl.api(
            "GET", "/reports.csv", params={"area_id": "huyen", "date": "2026-11-17", "lang": "en"}
        )
        assert r.content.decode("utf-8-sig").startswith("Area id,Area,Level,Loudspeakers")

        # Excel: Vietnamese headers, numbers as numbers, times in Viet Nam time.
        r = await ctl.api("GET", "/reports.xlsx", params={"area_id": "huyen", "date": "2026-11-17"})
        assert r.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        sheet = book["Báo cáo"]
        head = [c.value for c in sheet[4]]
        assert head[:4] == ["Mã khu vực", "Khu vực", "Cấp", "Số cụm loa"]
        last = [c.value for c in sheet[sheet.max_row]]
        assert last[:4] == ["huyen", "Huyện Thử", "tổng", 4]
        col = head.index("Lượt phát – chính sách, pháp luật")
        assert last[col] == law and isinstance(last[col], int)
        col = head.index("Tỷ lệ trực tuyến (%)")
        assert isinstance(last[col], float)
        assert last[col] == round(100 * (4 * month_s - 24 * 3600) / (4 * month_s), 2)
        log = book["Nhật ký"]
        assert log.max_row - 1 == sum(total["plays"].values())
        first = [c.value for c in log[2]]
        assert first[7] == datetime(2026, 11, 1, 6, 0)  # the first law bulletin, 06:00 local
        assert first[4] == "chính sách, pháp luật" and isinstance(first[10], float)

        # Access: a commune's staff see their commune, not their neighbour's or the district.
        staff = await ctl.login_as_new("staff-1", "commune_staff", "xa-1")
        r = await ctl.api("GET", "/reports", params={"area_id": "xa-1"}, token=staff)
        assert r.status_code == 200
        for area in ("xa-2", "huyen"):
            r = await ctl.api("GET", "/reports", params={"area_id": area}, token=staff)
            assert r.status_code == 403
            r = await ctl.api("GET", "/reports.xlsx", params={"area_id": area}, token=staff)
            assert r.status_code == 403
        auditor = await ctl.login_as_new("audit", "auditor")
        r = await ctl.api("GET", "/reports", params={"area_id": "tinh"}, token=auditor)
        assert r.status_code == 200
        officer = await ctl.login_as_new("off", "officer", "huyen")
        r = await ctl.api("GET", "/reports.csv", params={"area_id": "xa-2"}, token=officer)
        assert r.status_code == 200
        r = await ctl.api("GET", "/reports", params={"area_id": "tinh"}, token=officer)
        assert r.status_code == 403
        r = await ctl.api("GET", "/reports", params={"area_id": "nowhere"})
        assert r.status_code in (403, 404)
