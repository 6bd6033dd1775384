"""Real-world-style CAP documents from several agencies: Environment Canada's NAAD feed (CAP
1.2 with an empty <references />), the US National Weather Service, MeteoAlarm, a CAP 1.1
tsunami message, and a Vietnamese storm warning with its update and cancel."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.alerts.cap import VIETNAM, CapRefused
from controller.alerts.cap_export import check_file, format_result
from controller.alerts.cap_map import CapMapping, map_alert
from controller.alerts.cap_parse import parse_cap

AGENCIES = Path(__file__).parent / "cap_samples" / "agencies"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=VIETNAM)
AREAS: dict[str, str | None] = {
    "tinh-ha-tinh": None,
    "xa-an-hoa": "tinh-ha-tinh",
    "thon-dong": "xa-an-hoa",
    "thon-doai": "xa-an-hoa",
    "thon-bac": "xa-an-hoa",
}
NODES: list[tuple[str, str, float | None, float | None]] = [
    ("n-dong-1", "thon-dong", 18.34, 105.90),
    ("n-doai-1", "thon-doai", 18.35, 105.91),
    ("n-bac-1", "thon-bac", 18.40, 105.95),
    ("n-bac-2", "thon-bac", None, None),
]
# Each agency's own codes, mapped by the administrator onto our areas.
MAPPING = CapMapping(
    geocode_areas={
        "VN-ADM": {"18145": "xa-an-hoa"},
        "profile:CAP-CP:Location:0.3": {"3506008": "thon-dong"},
        "SAME": {"051059": "thon-bac"},
        "EMMA_ID": {"FR433": "thon-doai"},
    }
)


def read(name: str) -> bytes:
    return (AGENCIES / name).read_bytes()


def mapped(name: str, now: datetime = NOW):
    return map_alert(parse_cap(read(name)), MAPPING, areas=AREAS, nodes=NODES, now=now)


def test_naad_warning_with_empty_references_is_read() -> None:
    alert = parse_cap(read("naad_ec_snowfall.xml"))
    assert alert.references == () and alert.version == "1.2"
    assert alert.sender == "cap-pac@canada.ca" and len(alert.infos) == 2
    result = mapped("naad_ec_snowfall.xml")
    # Moderate severity: a priority announcement, not an emergency; English chosen over French.
    assert result.priority == "priority" and result.language == "en-CA"
    assert result.area_ids == ("thon-dong",) and result.action == "issue"
    assert "15 to 25 cm" in result.text


def test_empty_optional_elements_mean_absent_but_empty_required_ones_are_refused() -> None:
    nws = parse_cap(read("nws_flash_flood.xml"))  # carries an empty <contact></contact>
    assert nws.infos[0].event == "Flash Flood Warning"
    storm = read("vn_kttv_storm.xml").decode()
    empty = storm.replace("<web>https://nchmf.gov.vn</web>", "<web/><audience></audience>")
    empty = empty.replace("<areaDesc>Vùng ven biển", "<circle> </circle><areaDesc>Vùng ven biển")
    empty = empty.replace("<scope>Public</scope>", "<scope>Public</scope><note/><incidents/>")
    alert = parse_cap(empty.encode())
    assert alert.note is None and alert.infos[0].event == "Bão số 13"
    assert alert.infos[0].areas[1].circles == ()
    blank_event = storm.replace("<event>Bão số 13</event>", "<event/>")
    with pytest.raises(CapRefused, match=r"event> is empty"):
        parse_cap(blank_event.encode())
    blank_sent = storm.replace("<sent>2026-11-28T05:00:00+07:00</sent>", "<sent/>")
    with pytest.raises(CapRefused, match=r"sent> is empty"):
        parse_cap(blank_sent.encode())


def test_nws_polygon_and_same_code() -> None:
    result = mapped("nws_flash_flood.xml")
    assert result.priority == "emergency"  # Severe, Immediate, Likely
    assert result.area_ids == ("thon-bac",)
    assert set(result.node_ids) == {"n-bac-1", "n-bac-2"}


def test_meteoalarm_future_severe_is_a_priority_announcement() -> None:
    result = mapped("meteoalarm_thunderstorm.xml")
    assert result.priority == "priority"  # Future urgency: not an emergency
    assert result.area_ids == ("thon-doai",) and result.language == "fr-FR"
    assert ("NUTS3", "FRL03") in result.unmatched_geocodes


def test_cap11_is_read_as_cap12_and_flagged() -> None:
    alert = parse_cap(read("cap11_tsunami.xml"))
    assert alert.version == "1.1"
    assert alert.infos[0].certainty == "Likely"
    assert any("Very Likely" in note for note in alert.read_notes)
    result = mapped("cap11_tsunami.xml")
    assert result.cap_version == "1.1" and result.priority == "emergency"
    # The circle reaches every loudspeaker with coordinates; their villages are the targets.
    assert set(result.area_ids) == {"thon-dong", "thon-doai", "thon-bac"}
    line = format_result(
        check_file(
            AGENCIES / "cap11_tsunami.xml", areas=AREAS, nodes=NODES, mapping=MAPPING, now=NOW
        )
    )
    assert line.startswith("✔ cap11_tsunami.xml") and "CAP 1.1 (đọc như CAP 1.2" in line
    assert "'Very Likely' read as 'Likely'" in line


def test_cap10_stays_unsupported() -> None:
    with pytest.raises(CapRefused) as caught:
        parse_cap(read("cap10_old.xml"))
    assert caught.value.reason == "unsupported" and "CAP 1.0" in caught.value.message


def test_vietnamese_storm_then_update_then_cancel() -> None:
    first = mapped("vn_kttv_storm.xml")
    assert first.priority == "emergency" and first.language == "vi-VN"
    assert first.area_ids == ("xa-an-hoa",)
    assert "sơ tán đến nơi an toàn" in first.text
    update = mapped("vn_kttv_storm_update.xml")
    assert update.action == "update"
    assert update.referenced_identifiers == ("VN-NCHMF-2026-BAO-13-001",)
    assert "cấp 13" in update.title
    cancel = mapped("vn_kttv_storm_cancel.xml", now=datetime(2026, 11, 28, 21, tzinfo=VIETNAM))
    assert cancel.action == "cancel"
    assert cancel.referenced_identifiers == ("VN-NCHMF-2026-BAO-13-001", "VN-NCHMF-2026-BAO-13-002")


def test_check_of_an_expired_document_says_what_it_would_have_raised() -> None:
    later = NOW + timedelta(days=1)
    result = check_file(
        AGENCIES / "vn_kttv_storm.xml", areas=AREAS, nodes=NODES, mapping=MAPPING, now=later
    )
    assert not result.ok and result.refused is not None and result.refused.reason == "expired"
    assert result.alert is not None and result.alert.priority == "emergency"
    line = format_result(result)
    assert line.startswith("✘ vn_kttv_storm.xml: bị từ chối lúc này (refused now) — expired: ")
    assert "23:00 28/11/2026" in line
    assert "sẽ phát (would raise): khẩn cấp (emergency), 1 khu vực: xa-an-hoa" in line
    # Without our areas it would also reach no one: both reasons are given.
    bare = format_result(check_file(AGENCIES / "vn_kttv_storm.xml", areas={}, nodes=[], now=later))
    assert "expired: " in bare and "no_targets: " in bare and "«Tin bão khẩn cấp" in bare


def test_cap_check_command_writes_nothing(tmp_path: Path) -> None:
    """`radio cap check` in an empty folder, in demo mode: it reads, prints, and leaves the
    folder and the data directory as they were (no keyring, no secret, no database)."""
    root = Path(__file__).resolve().parents[2]
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {
        "RADIO_DEMO": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(root),
    }
    files = [str(AGENCIES / n) for n in ("vn_kttv_storm.xml", "cap11_tsunami.xml")]
    run = subprocess.run(
        [sys.executable, "-m", "radio.cli", "cap", "check", *files],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # no areas here: refused now
    assert "sẽ phát (would raise): khẩn cấp (emergency)" in run.stdout
    assert "CAP 1.1 (đọc như CAP 1.2" in run.stdout
    assert list(cwd.iterdir()) == []
    data = tmp_path / "data"
    data.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "radio.cli", "cap", "check", files[0]],
        cwd=cwd,
        env={**env, "RADIO_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
    )
    assert "no database at" in run.stdout, run.stdout + run.stderr
    assert list(cwd.iterdir()) == [] and list(data.iterdir()) == []
