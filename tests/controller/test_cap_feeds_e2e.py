"""Followed warning feeds end to end: an agency's Atom feed served over real HTTP on 127.0.0.1,
real CAP documents, and real simulated nodes. A warning the administrator's rule sends out by
itself sounds on the mapped village's loudspeakers after the feed's poll, without a person; its
update replaces it and its cancel stops it; a warning no rule sends waits for an officer's tap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.alerts.cap import VIETNAM
from controller.core.models import CapFeed, CapWarning
from tests.cap_feed_server import FeedServer, atom
from tests.clocks import SteppedClock
from tests.conftest import running_controller, wait_for
from tests.controller.test_alerts import sounding
from tests.controller.test_broadcast_e2e import fleet_of, make_commune

AGENCIES = Path(__file__).parent / "cap_samples" / "agencies"
STORM = (AGENCIES / "vn_kttv_storm.xml").read_text()
UPDATE = (AGENCIES / "vn_kttv_storm_update.xml").read_text()
CANCEL = (AGENCIES / "vn_kttv_storm_cancel.xml").read_text()


def stamp(when: datetime) -> str:
    return when.astimezone(VIETNAM).isoformat(timespec="seconds")


def dated(document: str, now: datetime, **replace: str) -> bytes:
    """An agency's document moved to now: the sample's times shifted to around `now`."""
    for old, offset in (
        ("2026-11-28T05:00:00+07:00", -timedelta(minutes=30)),
        ("2026-11-28T08:00:00+07:00", -timedelta(minutes=10)),
        ("2026-11-28T16:00:00+07:00", timedelta(minutes=30)),
        ("2026-11-28T20:00:00+07:00", -timedelta(minutes=1)),
        ("2026-11-28T23:00:00+07:00", timedelta(hours=2)),
    ):
        document = document.replace(old, stamp(now + offset))
    for old, new in replace.items():
        document = document.replace(old, new)
    return document.encode()


def feed_etag(ctl, feed_id: int) -> str | None:
    with ctl.service.db.session() as session:
        feed = session.get(CapFeed, feed_id)
        return feed.etag if feed is not None else None


def alert_sounding(node) -> bool:
    return (sounding(node) or "").startswith("alert:")


@pytest.mark.slow
async def test_followed_feed_raises_updates_and_cancels_on_the_mapped_village(make_settings):
    clock = SteppedClock()
    settings = make_settings(cap_feed_allowed_hosts="127.0.0.1")
    async with FeedServer() as agency, running_controller(settings, clock) as ctl:
        configs = await make_commune(ctl, 4)  # n0, n2 in thon-1; n1, n3 in thon-2
        officer = await ctl.login_as_new("can-bo", "officer", "xa-a")
        feeds = ctl.service.warning_feeds
        # The agency's commune code, and the rule: extreme and severe warnings for the commune
        # go out by themselves.
        r = await ctl.api(
            "PUT",
            "/cap/geocodes",
            json={"value_name": "VN-ADM", "value": "18145", "area_id": "thon-1"},
        )
        assert r.status_code == 200, r.text
        r = await ctl.api(
            "POST",
            "/cap/rules",
            json={
                "name": "Bão, lũ nghiêm trọng: phát ngay",
                "action": "auto",
                "severities": ["Extreme", "Severe"],
                "areas": ["xa-a"],
            },
        )
        assert r.status_code == 201, r.text
        agency.put("/canhbao.atom", atom([]), "application/atom+xml")
        r = await ctl.api(
            "POST",
            "/cap/feeds",
            json={"name": "NCHMF", "url": agency.url("/canhbao.atom"), "interval_s": 15},
        )
        assert r.status_code == 201, r.text
        feed = r.json()

        async with fleet_of(configs, clock) as fleet:
            await wait_for(lambda: fleet.summary().connected == 4, 20, "nodes to connect")
            # The first poll reads the empty index; the next one asks with its validators and
            # hears that nothing changed.
            # (Its validators stored: the agency's 200 alone leaves the poll half done.)
            await wait_for(lambda: feed_etag(ctl, feed["id"]), 20, "the feed's first poll")
            assert 200 in agency.statuses
            r = await ctl.api("POST", f"/cap/feeds/{feed['id']}/poll")
            assert r.json() == {"status": 304, "taken": [], "errors": []}
            assert agency.requests[-1]["if-none-match"].startswith('"')

            # The warning appears in the feed; the next poll is due after the feed's interval.
            now = datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
            agency.put("/cap/bao-13-1.xml", dated(STORM, now))
            agency.put("/canhbao.atom", atom([("bao-13-1", "/cap/bao-13-1.xml")]))
            clock.advance(16_000)
            await ctl.service.cap_feed_job.run_once()

            def raised() -> dict | None:
                with feeds.db.session() as s:
                    from sqlmodel import select

                    from controller.core.models import CapWarning

                    w = s.exec(
                        select(CapWarning).where(
                            CapWarning.identifier == "VN-NCHMF-2026-BAO-13-001"
                        )
                    ).first()
                    return w.model_dump() if w is not None and w.alert_id else None

            warning = await wait_for(raised, 20, "the warning to be raised by the rule")
            assert warning["status"] == "raised" and warning["priority"] == "emergency"
            alert_id = warning["alert_id"]
            await wait_for(
                lambda: all(
                    sounding(n) == f"alert:{alert_id}"
                    for n in fleet.nodes
                    if n.node_id in ("n0", "n2")
                ),
                20,
                "thon-1's loudspeakers to sound the warning",
            )
            assert not any(alert_sounding(n) for n in fleet.nodes if n.node_id in ("n1", "n3"))
            alert = (await ctl.api("GET", f"/alerts/{alert_id}")).json()["alert"]
            assert alert["areas"] == ["thon-1"] and alert["created_by"] == "cap-feed"
            assert "Tin bão khẩn cấp" in alert["title"] and "sơ tán" in alert["text"]
            audit = (await ctl.api("GET", "/audit", params={"actor": "cap-feed"})).json()
            issued = [e for e in audit if e["action"] == "alert.issue"]
            assert issued and issued[0]["target"] == alert_id
            assert {"cap.received", "cap.auto"} <= {e["action"] for e in audit}

            # The same document again, under another address: kept once, not raised again.
            agency.put("/cap/copy.xml", dated(STORM, now))
            agency.put(
                "/canhbao.atom",
                atom([("copy", "/cap/copy.xml"), ("bao-13-1", "/cap/bao-13-1.xml")]),
            )
            r = await ctl.api("POST", f"/cap/feeds/{feed['id']}/poll")
            assert r.json()["status"] == 200 and r.json()["taken"] == [], r.text

            # The agency's update replaces the running alert (same alert, next version).
            agency.put("/cap/bao-13-2.xml", dated(UPDATE, now))
            agency.put(
                "/canhbao.atom",
                atom([("bao-13-2", "/cap/bao-13-2.xml"), ("bao-13-1", "/cap/bao-13-1.xml")]),
            )
            r = await ctl.api("POST", f"/cap/feeds/{feed['id']}/poll")
            assert len(r.json()["taken"]) == 1, r.text
            alert = (await ctl.api("GET", f"/alerts/{alert_id}")).json()["alert"]
            assert alert["version"] == 2 and "cấp 13" in alert["title"]

            # Its cancel stops it everywhere.
            agency.put("/cap/bao-13-3.xml", dated(CANCEL, now))
            agency.put(
                "/canhbao.atom",
                atom(
                    [
                        ("bao-13-3", "/cap/bao-13-3.xml"),
                        ("bao-13-2", "/cap/bao-13-2.xml"),
                        ("bao-13-1", "/cap/bao-13-1.xml"),
                    ]
                ),
            )
            r = await ctl.api("POST", f"/cap/feeds/{feed['id']}/poll")
            assert len(r.json()["taken"]) == 1, r.text
            alert = (await ctl.api("GET", f"/alerts/{alert_id}")).json()["alert"]
            assert alert["status"] == "cancelled" and alert["cancelled_by"] == "cap-feed"
            await wait_for(
                lambda: not any(alert_sounding(n) for n in fleet.nodes),
                20,
                "the loudspeakers to stop",
            )

            # A moderate warning matches no rule: it waits at the top of the officers' list,
            # and one tap sends it.
            moderate = dated(
                STORM,
                now,
                **{
                    "VN-NCHMF-2026-BAO-13-001": "VN-NCHMF-2026-MUA-14-001",
                    "<severity>Extreme</severity>": "<severity>Moderate</severity>",
                    "Tin bão khẩn cấp: bão số 13": "Mưa lớn diện rộng",
                },
            )
            agency.put("/cap/mua-14-1.xml", moderate)
            agency.put("/canhbao.atom", atom([("mua-14-1", "/cap/mua-14-1.xml")]))
            r = await ctl.api("POST", f"/cap/feeds/{feed['id']}/poll")
            assert len(r.json()["taken"]) == 1, r.text
            pending = (await ctl.api("GET", "/cap/warnings", token=officer)).json()
            assert [w["identifier"] for w in pending] == ["VN-NCHMF-2026-MUA-14-001"]
            assert pending[0]["status"] == "pending" and pending[0]["priority"] == "priority"
            assert not any(alert_sounding(n) for n in fleet.nodes)
            r = await ctl.api("POST", f"/cap/warnings/{pending[0]['id']}/approve", token=officer)
            assert r.status_code == 200, r.text
            approved = r.json()
            await wait_for(
                lambda: all(
                    sounding(n) == f"alert:{approved['id']}"
                    for n in fleet.nodes
                    if n.node_id in ("n0", "n2")
                ),
                20,
                "the approved warning to sound",
            )
            r = await ctl.api("POST", f"/cap/warnings/{pending[0]['id']}/approve", token=officer)
            assert r.status_code == 409 and r.json()["code"] == "cap_warning_decided"
            audit = (await ctl.api("GET", "/audit", params={"action": "cap.approve"})).json()
            assert audit[0]["actor"] == "can-bo"
            assert audit[0]["detail"]["alert"] == approved["id"]


async def test_an_update_changes_a_running_alert_only_for_those_with_the_right_over_it(
    make_settings,
):
    """A followed Update refers to an alert already sounding in another village: approving it
    changes that alert's message there, so it takes the right to alert there, not only where
    the Update itself was mapped. A document from another sender naming the same identifier
    refers to something else and changes nothing."""
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 0)
        for value, area in (("18145", "thon-2"), ("18146", "thon-1")):
            geocode = {"value_name": "VN-ADM", "value": value, "area_id": area}
            assert (await ctl.api("PUT", "/cap/geocodes", json=geocode)).status_code == 200
        now = datetime.now(UTC)
        xml = {"Content-Type": "application/xml"}
        r = await ctl.api("POST", "/alerts/cap", content=dated(STORM, now), headers=xml)
        assert r.status_code == 201, r.text
        storm = r.json()
        assert storm["areas"] == ["thon-2"] and storm["version"] == 1

        stranger = dated(UPDATE, now).replace(
            b"<sender>canhbao@nchmf.gov.vn</sender>", b"<sender>other@example.vn</sender>"
        )
        r = await ctl.api("POST", "/alerts/cap", content=stranger, headers=xml)
        assert r.status_code == 404, r.text

        update = dated(UPDATE, now).replace(b"<value>18145</value>", b"<value>18146</value>")
        warning, new = await ctl.service.warning_feeds.take(update)
        assert new and warning.status == "pending" and json.loads(warning.areas) == ["thon-1"]
        staff = await ctl.login_as_new("thon-mot", "commune_staff", "thon-1")
        r = await ctl.api("POST", f"/cap/warnings/{warning.id}/approve", token=staff)
        assert r.status_code == 403, r.text
        with ctl.service.db.session() as s:
            kept = s.get(CapWarning, warning.id)
            assert kept is not None and kept.status == "pending"  # back to the officers
        r = await ctl.api("GET", f"/alerts/{storm['id']}")
        assert r.json()["alert"]["version"] == 1  # unchanged

        r = await ctl.api("POST", f"/cap/warnings/{warning.id}/approve")  # an administrator
        assert r.status_code == 200, r.text
        assert r.json()["id"] == storm["id"] and r.json()["version"] == 2
