"""Followed warning feeds, the edges: addresses refused before and during a poll (SSRF), sizes
capped as the bytes arrive, RSS and single-document feeds, CAP carried inside an Atom entry,
refused and ignored warnings kept on record, rights, and the officers' pending list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from controller.alerts.cap_feeds import FeedError, read_index
from controller.alerts.cap_follow import rule_matches
from controller.core.models import CapRule, CapWarning
from tests.cap_feed_server import FeedServer
from tests.conftest import running_controller
from tests.controller.test_broadcast_e2e import make_commune
from tests.controller.test_cap_feeds_e2e import STORM, dated

AGENCIES = Path(__file__).parent / "cap_samples" / "agencies"


def rss(links: list[str]) -> bytes:
    items = "".join(
        f"<item><title>x</title><link>https://example.vn/page</link>"
        f'<enclosure url="{link}" type="application/cap+xml" length="1"/></item>'
        for link in links
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def warnings_of(ctl) -> list[CapWarning]:
    with ctl.service.db.session() as s:
        return list(s.exec(select(CapWarning).order_by(CapWarning.id)).all())


def test_index_reading() -> None:
    entries = read_index(rss(["/a.xml", "http://h/b.xml"]), "http://h/feed/rss")
    assert [e.url for e in entries] == ["http://h/a.xml", "http://h/b.xml"]
    assert read_index((AGENCIES / "vn_kttv_storm.xml").read_bytes(), "http://h/") is None
    embedded = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id><content type="text/xml">'
        + (AGENCIES / "cap11_tsunami.xml").read_bytes().split(b"?>", 1)[1]
        + b"</content></entry></feed>"
    )
    [entry] = read_index(embedded, "http://h/")
    assert entry.url == "" and entry.document is not None and b"PTWC" in entry.document
    for bad, words in (
        (b"<html><body>oops</body></html>", "neither an Atom or RSS feed"),
        (b"<feed", "not well-formed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><feed/>', "DTD"),
    ):
        try:
            read_index(bad, "http://h/")
        except FeedError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{bad!r} was read")


def test_rule_matching_by_area_lineage_and_lists() -> None:
    areas = {"tinh": None, "xa": "tinh", "thon": "xa", "xa-khac": "tinh"}
    rule = CapRule(
        name="r",
        action="auto",
        severities='["Extreme"]',
        urgencies="[]",
        certainties="[]",
        areas='["xa"]',
    )
    warning = CapWarning(
        sender="s",
        identifier="i",
        sent=datetime.now(UTC),
        msg_type="Alert",
        text="",
        areas='["thon"]',
        severity="Extreme",
        urgency="Immediate",
        certainty="Observed",
    )
    assert rule_matches(rule, warning, areas)
    warning.areas = '["xa-khac"]'
    assert not rule_matches(rule, warning, areas)
    warning.areas, warning.severity = '["thon"]', "Severe"
    assert not rule_matches(rule, warning, areas)
    rule.feed_id, warning.feed_id, warning.severity = 2, 1, "Extreme"
    assert not rule_matches(rule, warning, areas)


@pytest.mark.sql  # warnings kept once by a unique constraint; decisions by conditional UPDATE
async def test_feed_addresses_sizes_and_formats(make_settings):
    settings = make_settings(cap_feed_allowed_hosts="127.0.0.1", cap_feed_max_bytes=64 * 1024)
    async with FeedServer() as agency, running_controller(settings) as ctl:
        await make_commune(ctl, 0)
        officer = await ctl.login_as_new("can-bo", "officer", "xa-a")
        staff2 = await ctl.login_as_new("thon-hai", "commune_staff", "thon-2")
        r = await ctl.api(
            "PUT",
            "/cap/geocodes",
            json={"value_name": "VN-ADM", "value": "18145", "area_id": "thon-1"},
        )
        assert r.status_code == 200
        # Addresses refused before anything is fetched.
        for url in (
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "http://10.1.2.3/x",
        ):
            r = await ctl.api("POST", "/cap/feeds", json={"name": "x", "url": url})
            assert r.status_code == 422 and r.json()["code"] == "cap_feed_url_refused", url
        r = await ctl.api(
            "POST", "/cap/feeds", json={"name": "x", "url": agency.url("/a")}, token=officer
        )
        assert r.status_code == 403

        async def follow(path: str) -> int:
            r = await ctl.api(
                "POST", "/cap/feeds", json={"name": path, "url": agency.url(path), "enabled": False}
            )
            assert r.status_code == 201, r.text
            return int(r.json()["id"])

        async def poll(feed_id: int) -> dict:
            r = await ctl.api("POST", f"/cap/feeds/{feed_id}/poll")
            assert r.status_code == 200, r.text
            return r.json()

        now = datetime.now(UTC)
        # An index naming a private address, and one redirecting there: each refused on the way.
        agency.redirects["/redirect.xml"] = "http://169.254.169.254/cap.xml"
        agency.put("/private.rss", rss(["http://10.0.0.1/cap.xml", agency.url("/redirect.xml")]))
        result = await poll(await follow("/private.rss"))
        assert result["taken"] == [] and len(result["errors"]) == 2
        assert (
            "10.0.0.1" in result["errors"][1]
            and "RADIO_CAP_FEED_ALLOWED_HOSTS" in result["errors"][1]
        )
        assert "169.254.169.254" in result["errors"][0]
        # Too large: by the announced length, and by the bytes as they arrive.
        big = dated(STORM, now).replace(b"</description>", b" " + b"x" * 70_000 + b"</description>")
        agency.put("/big-sized.xml", big)
        agency.put("/big-streamed.xml", big)
        agency.unsized.add("/big-streamed.xml")
        result = await poll(await follow("/big-sized.xml"))
        assert result["taken"] == [] and "announces" in result["errors"][0]
        result = await poll(await follow("/big-streamed.xml"))
        assert result["taken"] == [] and "sent more than 65536 bytes" in result["errors"][0]
        # A single CAP address, an RSS index with enclosures, and CAP inside an Atom entry.
        agency.put("/one.xml", dated(STORM, now))
        result = await poll(await follow("/one.xml"))
        assert len(result["taken"]) == 1 and result["errors"] == []
        tsunami = (AGENCIES / "cap11_tsunami.xml").read_text()
        tsunami = tsunami.replace(
            "2026-11-28T01:42:00-00:00", (now - timedelta(minutes=5)).isoformat(timespec="seconds")
        )
        tsunami = tsunami.replace(
            "2026-11-28T07:42:00-00:00", (now + timedelta(hours=1)).isoformat(timespec="seconds")
        )
        tsunami = tsunami.replace(
            "<circle>15.90,109.50 500</circle>",
            "<geocode><valueName>VN-ADM</valueName><value>18145</value></geocode>",
        )
        agency.put(
            "/embedded.atom",
            b'<feed xmlns="http://www.w3.org/2005/Atom"><id>f</id><entry><id>1</id><content type="text/xml">'
            + tsunami.encode().split(b"?>", 1)[1]
            + b"</content></entry></feed>",
        )
        result = await poll(await follow("/embedded.atom"))
        assert len(result["taken"]) == 1, result
        expired = dated(STORM, now - timedelta(hours=5), **{"BAO-13-001": "BAO-12-009"})
        agency.put("/expired.xml", expired)
        agency.put("/broken.xml", dated(STORM, now)[:400])
        agency.put(
            "/list.rss",
            rss([agency.url("/broken.xml"), agency.url("/expired.xml"), agency.url("/one.xml")]),
        )
        result = await poll(await follow("/list.rss"))
        assert len(result["taken"]) == 1  # the expired one; /one.xml is known
        assert "refused (invalid)" in result["errors"][0] and "broken.xml" in result["errors"][0]
        kept = {w.identifier: w for w in warnings_of(ctl)}
        assert kept["VN-NCHMF-2026-BAO-12-009"].status == "refused"
        assert "expired" in (kept["VN-NCHMF-2026-BAO-12-009"].reason or "")
        assert kept["PTWC-2026-11-28T0142Z-001"].cap_version == "1.1"
        # Nothing matched a rule: both live warnings wait, the emergency first.
        pending = (await ctl.api("GET", "/cap/warnings", token=officer)).json()
        assert [w["identifier"] for w in pending] == [
            "PTWC-2026-11-28T0142Z-001",
            "VN-NCHMF-2026-BAO-13-001",
        ]
        assert all(w["status"] == "pending" and w["priority"] == "emergency" for w in pending)
        # Staff of another village neither see nor decide them.
        assert (await ctl.api("GET", "/cap/warnings", token=staff2)).json() == []
        r = await ctl.api("POST", f"/cap/warnings/{pending[0]['id']}/approve", token=staff2)
        assert r.status_code == 403
        r = await ctl.api("POST", f"/cap/warnings/{pending[1]['id']}/reject", token=officer)
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        r = await ctl.api("POST", f"/cap/warnings/{pending[1]['id']}/approve", token=officer)
        assert r.status_code == 409 and r.json()["code"] == "cap_warning_decided"
        # An exercise goes out as a test alert, never as a real one.
        drill = dated(
            STORM,
            now,
            **{"BAO-13-001": "DIEN-TAP-1", "<status>Actual</status>": "<status>Exercise</status>"},
        )
        agency.put("/drill.xml", drill)
        result = await poll(await follow("/drill.xml"))
        [waiting] = [
            w for w in (await ctl.api("GET", "/cap/warnings", token=officer)).json() if w["test"]
        ]
        assert waiting["identifier"] == "VN-NCHMF-2026-DIEN-TAP-1"
        r = await ctl.api("POST", f"/cap/warnings/{waiting['id']}/approve", token=officer)
        assert r.status_code == 200 and r.json()["test"] is True, r.text
        # An ignore rule: later warnings it matches are recorded only.
        r = await ctl.api("POST", "/cap/rules", json={"name": "chỉ ghi", "action": "ignore"})
        assert r.status_code == 201
        agency.put("/later.xml", dated(STORM, now, **{"BAO-13-001": "BAO-13-077"}))
        result = await poll(await follow("/later.xml"))
        assert [w.status for w in warnings_of(ctl) if w.identifier.endswith("077")] == ["ignored"]
        audit = (await ctl.api("GET", "/audit", params={"action": "cap."})).json()
        actions = {e["action"] for e in audit}
        assert {
            "cap.received",
            "cap.refused",
            "cap.ignore",
            "cap.await_approval",
            "cap.reject",
            "cap.feed.add",
            "cap.geocode.put",
            "cap.approve",
        } <= actions
        tests = (await ctl.api("GET", "/audit", params={"action": "alert.test"})).json()
        assert tests and tests[0]["actor"] == "can-bo"


async def test_cap_api_reads_naad_and_cap11_with_the_geocode_table(make_settings):
    """`POST /alerts/cap` takes Environment Canada's document (empty <references />) and a CAP
    1.1 one, aimed through the administrator's geocode table; the audit says which was 1.1."""
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 0)
        r = await ctl.api(
            "PUT",
            "/cap/geocodes",
            json={
                "value_name": "profile:CAP-CP:Location:0.3",
                "value": "3506008",
                "area_id": "thon-2",
            },
        )
        assert r.status_code == 200
        now = datetime.now(UTC)
        naad = (AGENCIES / "naad_ec_snowfall.xml").read_text()
        naad = naad.replace(
            "2026-11-28T01:56:17-00:00", (now - timedelta(minutes=5)).isoformat(timespec="seconds")
        )
        naad = naad.replace(
            "2026-11-28T17:56:17-00:00", (now + timedelta(hours=2)).isoformat(timespec="seconds")
        )
        headers = {"Content-Type": "application/xml"}
        r = await ctl.api("POST", "/alerts/cap", content=naad.encode(), headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["areas"] == ["thon-2"] and "snowfall" in r.json()["title"]
        tsunami = (AGENCIES / "cap11_tsunami.xml").read_text()
        tsunami = tsunami.replace(
            "2026-11-28T01:42:00-00:00", (now - timedelta(minutes=5)).isoformat(timespec="seconds")
        )
        tsunami = tsunami.replace(
            "2026-11-28T07:42:00-00:00", (now + timedelta(hours=1)).isoformat(timespec="seconds")
        )
        tsunami = tsunami.replace(
            "<circle>15.90,109.50 500</circle>",
            "<geocode><valueName>VN-ADM</valueName><value>thon-1</value></geocode>",
        )
        r = await ctl.api("POST", "/alerts/cap", content=tsunami.encode(), headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["areas"] == ["thon-1"]
        audit = (await ctl.api("GET", "/audit", params={"action": "alert.issue"})).json()
        versions = {e["detail"]["cap"]: e["detail"]["cap_version"] for e in audit}
        assert versions == {
            "PTWC-2026-11-28T0142Z-001": "1.1",
            "urn:oid:2.49.0.1.124.2838273405.2026": "1.2",
        }
