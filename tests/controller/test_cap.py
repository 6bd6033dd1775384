"""CAP 1.2: safe parsing, refusals, choice of language, mapping to our alerts, export, check."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.alerts.cap import (
    EARTH_RADIUS_KM,
    VIETNAM,
    CapRefused,
    choose_info,
    distance_km,
    in_ring,
)
from controller.alerts.cap_export import CapExportError, check_file, export_cap, format_result
from controller.alerts.cap_map import CapMapping, map_alert, speech_text
from controller.alerts.cap_parse import parse_cap
from controller.core.errors import Invalid

SAMPLES = Path(__file__).parent / "cap_samples"
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
    ("n-dong-2", "thon-dong", 18.342, 105.903),
    ("n-doai-1", "thon-doai", 18.35, 105.91),
    ("n-bac-1", "thon-bac", 18.40, 105.95),
    ("n-bac-2", "thon-bac", None, None),
]
# The national flood service uses official commune codes; ours are slugs.
MAPPING = CapMapping(geocode_areas={"VN-ADM": {"18145": "xa-an-hoa"}})


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def mapped(data: bytes, mapping: CapMapping = MAPPING, now: datetime = NOW):
    return map_alert(parse_cap(data), mapping, areas=AREAS, nodes=NODES, now=now)


def refusal(data: bytes, mapping: CapMapping = MAPPING, now: datetime = NOW) -> CapRefused:
    with pytest.raises(CapRefused) as caught:
        mapped(data, mapping, now)
    return caught.value


STORM = sample("storm_polygon.xml")


def storm_with(old: str, new: str) -> bytes:
    assert old.encode() in STORM, old
    return STORM.replace(old.encode(), new.encode())


# Parsing -------------------------------------------------------------------------------------


def test_flood_parses_every_field() -> None:
    alert = parse_cap(sample("flood_vi_en.xml"))
    assert (alert.identifier, alert.sender) == ("VN-KTTV-2026-1128-001", "canhbao@kttv.gov.vn")
    assert alert.sent == datetime(2026, 11, 28, 8, 0, tzinfo=VIETNAM)
    assert alert.sent.utcoffset() == timedelta(hours=7)
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Alert", "Public")
    assert [i.language for i in alert.infos] == ["en-US", "vi-VN"]
    vi = alert.infos[1]
    assert (vi.event, vi.urgency, vi.severity, vi.certainty) == (
        "Cảnh báo lũ",
        "Expected",
        "Severe",
        "Likely",
    )
    assert vi.categories == ("Met",)
    assert vi.expires == datetime(2026, 11, 28, 17, 30, tzinfo=VIETNAM)
    assert vi.sender_name == "Trung tâm Dự báo khí tượng thủy văn quốc gia"
    assert vi.areas[0].area_desc == "Xã An Hòa"
    assert vi.areas[0].geocodes == (("VN-ADM", "18145"),)


def test_language_defaults_to_en_us() -> None:
    alert = parse_cap(storm_with("<language>vi-VN</language>", ""))
    assert alert.infos[0].language == "en-US"


def test_polygon_and_circle_are_parsed() -> None:
    ring = parse_cap(STORM).infos[0].areas[0].polygons[0]
    assert ring[0] == ring[-1] == (18.33, 105.89) and len(ring) == 5
    circle = parse_cap(sample("fire_circle.xml")).infos[0].areas[0].circles[0]
    assert (circle.lat, circle.lon, circle.radius_km) == (18.4, 105.95, 1.0)


def test_references_are_parsed_into_triples() -> None:
    alert = parse_cap(sample("flood_cancel.xml"))
    assert alert.infos == ()
    assert [r.identifier for r in alert.references] == [
        "VN-KTTV-2026-1128-001",
        "VN-KTTV-2026-1128-003",
    ]
    assert alert.references[0].sent == datetime(2026, 11, 28, 8, 0, tzinfo=VIETNAM)


@pytest.mark.parametrize(
    "name", ["billion_laughs.xml", "xxe_file.xml", "xxe_http.xml", "doctype_only.xml"]
)
def test_hostile_documents_are_refused_unexpanded(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(CapRefused) as caught:
        parse_cap(sample(name))
    assert time.monotonic() - started < 1  # nothing was expanded or fetched
    assert caught.value.reason == "hostile"
    assert "DTD" in caught.value.message
    assert "root:" not in caught.value.message


def test_hostile_messages_say_which_attack() -> None:
    def message(name: str) -> str:
        with pytest.raises(CapRefused) as caught:
            parse_cap(sample(name))
        return caught.value.message

    assert "billion laughs" in message("billion_laughs.xml")
    assert "file:///etc/passwd" in message("xxe_file.xml")
    assert "http://127.0.0.1:9/cap.dtd" in message("xxe_http.xml")


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("agencies/cap10_old.xml", "unsupported", "CAP 1.0"),
        ("truncated.xml", "invalid", "truncated"),
        ("missing_identifier.xml", "invalid", "<identifier>"),
        ("bad_enum.xml", "invalid", "'Critical'"),
    ],
)
def test_sample_refusals(name: str, reason: str, words: str) -> None:
    with pytest.raises(CapRefused) as caught:
        parse_cap(sample(name))
    assert caught.value.reason == reason
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("2026-11-28T07:30:00+07:00", "2026-11-28T07:30:00", "alert/sent"),
        ("2026-11-28T07:30:00+07:00", "28/11/2026 07:30", "alert/sent"),
        ("<status>Actual", "<status>Real", "alert/status"),
        ("<msgType>Alert", "<msgType>Update", "<alert/references> is missing"),
        ("<scope>Public", "<scope>public", "case matters"),
        ("<category>Met", "<category>Weather", "category"),
        ("<urgency>Immediate", "<urgency>Now", "urgency"),
        ("<certainty>Observed", "<certainty>Very Likely", "certainty"),
        ("<event>Bão số 12</event>", "", "<event>"),
        (" 18.33,105.89</polygon>", "</polygon>", "polygon"),
        (
            "<polygon>18.33,105.89 18.33,105.92 18.36,105.92 18.36,105.89 18.33,105.89",
            "<polygon>18.33,105.89 18.33,105.92 18.33,105.89",
            "at least 4 points",
        ),
        ("18.36,105.92", "95.0,105.92", "outside latitude"),
        ("18.36,105.92", "18.36;105.92", "latitude,longitude"),
        ("18.36,105.92", "nan,105.92", "outside latitude"),
        ("<areaDesc>Ven biển thôn Đông và thôn Đoài</areaDesc>", "", "<areaDesc>"),
        (
            "<identifier>VN-KTTV-2026-1128-002</identifier>",
            "<identifier>A</identifier><identifier>B</identifier>",
            "allows one",
        ),
        ("<identifier>VN-KTTV-2026-1128-002", "<identifier>VN KTTV", "spaces"),
        ("<sender>canhbao@kttv.gov.vn</sender>", "<sender>   </sender>", "alert/sender> is empty"),
        ("<scope>Public</scope>", "<scope>Public</scope><priority>1</priority>", "<priority>"),
        ("<scope>Public</scope>", '<scope>Public</scope><x xmlns="">1</x>', "outside the CAP"),
    ],
)
def test_invalid_documents_name_the_element(old: str, new: str, words: str) -> None:
    with pytest.raises(CapRefused) as caught:
        parse_cap(storm_with(old, new))
    assert caught.value.reason == "invalid"
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("<area>\n", "<area><circle>18.4,105.95</circle>\n", "circle"),
        ("<area>\n", "<area><circle>18.4,105.95 -1</circle>\n", "radius in kilometres"),
        ("<area>\n", "<area><geocode><valueName>VN-ADM</valueName></geocode>\n", "<value>"),
        (
            "<scope>Public</scope>",
            "<scope>Public</scope><references>a,b</references>",
            "sender,identifier,sent",
        ),
    ],
)
def test_invalid_areas_and_references(old: str, new: str, words: str) -> None:
    with pytest.raises(CapRefused) as caught:
        parse_cap(storm_with(old, new))
    assert words in caught.value.message


def test_document_level_refusals() -> None:
    with pytest.raises(CapRefused, match="empty"):
        parse_cap(b"  \n")
    with pytest.raises(CapRefused) as caught:
        parse_cap(STORM, max_bytes=100)
    assert caught.value.reason == "too_large"
    with pytest.raises(CapRefused, match="root element is <feed>"):
        parse_cap(b'<feed xmlns="http://www.w3.org/2005/Atom"/>')
    with pytest.raises(CapRefused, match=r"not <alert> in the CAP 1\.2 namespace"):
        parse_cap(STORM.replace(b' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', b""))


def test_tolerated_variants() -> None:
    # "Z" instead of "+00:00", and elements of other namespaces, as CAP 1.2 permits.
    alert = parse_cap(storm_with("2026-11-28T07:30:00+07:00", "2026-11-28T00:30:00Z"))
    assert alert.sent == datetime(2026, 11, 28, 7, 30, tzinfo=VIETNAM)
    extended = storm_with(
        "</alert>", '<ext:signal xmlns:ext="urn:example:ext">1</ext:signal></alert>'
    )
    assert parse_cap(extended).identifier == "VN-KTTV-2026-1128-002"


def test_refusal_is_a_domain_error() -> None:
    err = CapRefused("invalid", "why")
    assert isinstance(err, Invalid) and err.status == 422 and str(err) == "why"


# Choice of language --------------------------------------------------------------------------


def test_vietnamese_info_is_chosen_even_when_second() -> None:
    alert = parse_cap(sample("flood_vi_en.xml"))
    assert choose_info(alert).language == "vi-VN"
    assert choose_info(alert, ("en",)).language == "en-US"
    assert choose_info(alert, ("fr",)).language == "en-US"  # no match: the first block
    assert choose_info(parse_cap(sample("flood_cancel.xml"))) is None


def test_vi_matches_regional_tags_without_case() -> None:
    alert = parse_cap(storm_with("<language>vi-VN</language>", "<language>VI</language>"))
    assert choose_info(alert, ("vi-VN",)) is not None
    assert choose_info(alert).language == "VI"


# Mapping -------------------------------------------------------------------------------------


def test_flood_maps_to_emergency_for_the_whole_commune() -> None:
    result = mapped(sample("flood_vi_en.xml"))
    assert result.action == "issue" and result.priority == "emergency" and not result.test
    assert result.language == "vi-VN"
    assert result.title == "Cảnh báo lũ trên sông Ngàn Sâu"
    assert result.text == (
        "Cảnh báo lũ trên sông Ngàn Sâu. Mực nước sông Ngàn Sâu đang lên, có khả năng vượt "
        "báo động 3 trong đêm nay. Bà con khẩn trương di chuyển người và gia súc lên vùng cao."
    )
    assert result.expires == datetime(2026, 11, 28, 17, 30, tzinfo=VIETNAM)
    assert result.area_ids == ("xa-an-hoa",)
    assert set(result.node_ids) == {n[0] for n in NODES}  # with or without coordinates
    assert (result.repeat, result.volume) == (3, 100)


def test_unmapped_geocode_gives_no_targets_with_the_default_mapping() -> None:
    err = refusal(sample("flood_vi_en.xml"), CapMapping())
    assert err.reason == "no_targets"
    assert "VN-ADM=18145" in err.message and "Xã An Hòa" in err.message


def test_storm_polygon_reaches_the_nodes_inside() -> None:
    result = mapped(STORM)
    assert result.priority == "emergency"
    assert result.area_ids == ("thon-dong", "thon-doai")
    assert result.node_ids == ("n-dong-1", "n-dong-2", "n-doai-1")
    assert result.expires == datetime(2026, 11, 28, 13, 30, tzinfo=VIETNAM)  # sent + 6 h
    assert result.effective == result.sent


def test_fire_circle_reaches_one_node_at_priority() -> None:
    result = mapped(sample("fire_circle.xml"))
    assert result.priority == "priority"  # certainty Possible is not enough for emergency
    assert (result.area_ids, result.node_ids) == (("thon-bac",), ("n-bac-1",))
    assert (result.repeat, result.volume) == (2, 85)
    assert result.text.startswith("Nguy cơ cháy rừng tại đồi thông thôn Bắc. Không đốt")


def test_update_and_cancel_name_the_first_alert() -> None:
    update = mapped(sample("flood_update.xml"))
    assert update.action == "update" and update.priority == "emergency"
    assert update.referenced_identifiers == ("VN-KTTV-2026-1128-001",)
    cancel = mapped(sample("flood_cancel.xml"))
    assert cancel.action == "cancel" and cancel.priority is None and cancel.repeat is None
    assert cancel.referenced_identifiers == ("VN-KTTV-2026-1128-001", "VN-KTTV-2026-1128-003")
    assert cancel.area_ids == () and cancel.text == ""


def test_expired_refused_but_accepted_earlier() -> None:
    err = refusal(sample("expired.xml"))
    assert err.reason == "expired" and "18:00 27/11/2026" in err.message
    early = datetime(2026, 11, 27, 8, 0, tzinfo=VIETNAM)
    assert mapped(sample("expired.xml"), now=early).priority == "emergency"


def test_minor_refused_unless_the_mapping_allows_it() -> None:
    err = refusal(sample("minor.xml"))
    assert err.reason == "not_actionable" and "Minor" in err.message
    lenient = MAPPING.model_copy(update={"priority_severities": frozenset({"Minor"})})
    assert mapped(sample("minor.xml"), lenient).priority == "priority"


def test_no_matching_area_refused() -> None:
    err = refusal(sample("no_match.xml"))
    assert err.reason == "no_targets"
    assert "Ba Đình" in err.message and "VN-ADM=00001" in err.message
    assert "1 polygon" in err.message


@pytest.mark.parametrize(
    ("status", "test", "refused"),
    [
        ("Actual", False, False),
        ("Test", True, False),
        ("Exercise", True, False),
        ("Draft", None, True),
        ("System", None, True),
    ],
)
def test_statuses(status: str, test: bool | None, refused: bool) -> None:
    data = storm_with("<status>Actual", f"<status>{status}")
    if refused:
        assert refusal(data).reason == "not_actionable"
    else:
        assert mapped(data).test is test


def test_mapping_can_refuse_exercises_and_allow_restricted_scope() -> None:
    exercise = storm_with("<status>Actual", "<status>Exercise")
    strict = MAPPING.model_copy(update={"statuses": {"Actual": "live", "Exercise": "refuse"}})
    assert refusal(exercise, strict).reason == "not_actionable"
    restricted = storm_with("<scope>Public", "<scope>Restricted")
    assert "Restricted" in refusal(restricted).message
    open_scope = MAPPING.model_copy(update={"scopes": frozenset({"Public", "Restricted"})})
    assert mapped(restricted, open_scope).priority == "emergency"


@pytest.mark.parametrize(
    ("urgency", "severity", "certainty", "expected"),
    [
        ("Immediate", "Extreme", "Observed", "emergency"),
        ("Expected", "Severe", "Likely", "emergency"),
        ("Future", "Extreme", "Observed", "priority"),
        ("Immediate", "Severe", "Possible", "priority"),
        ("Immediate", "Moderate", "Observed", "priority"),
        ("Immediate", "Minor", "Observed", None),
        ("Immediate", "Unknown", "Observed", None),
        ("Immediate", "Extreme", "Unlikely", None),
    ],
)
def test_priority_rules(urgency: str, severity: str, certainty: str, expected: str | None) -> None:
    data = (
        STORM.replace(b"<urgency>Immediate", f"<urgency>{urgency}".encode())
        .replace(b"<severity>Extreme", f"<severity>{severity}".encode())
        .replace(b"<certainty>Observed", f"<certainty>{certainty}".encode())
    )
    if expected is None:
        assert refusal(data).reason == "not_actionable"
    else:
        assert mapped(data).priority == expected


def test_mapping_changes_repeat_volume_and_emergency_rules() -> None:
    loud = MAPPING.model_copy(
        update={
            "repeat": {"emergency": 5, "priority": 1},
            "volume": {"emergency": 90, "priority": 70},
        }
    )
    assert (mapped(STORM, loud).repeat, mapped(STORM, loud).volume) == (5, 90)
    cautious = MAPPING.model_copy(update={"emergency_certainties": frozenset({"Observed"})})
    assert mapped(sample("flood_vi_en.xml"), cautious).priority == "priority"


def test_ack_and_info_less_alerts_are_not_actionable() -> None:
    assert "Ack" in refusal(storm_with("<msgType>Alert", "<msgType>Ack")).message
    no_info = sample("flood_cancel.xml").replace(b"<msgType>Cancel", b"<msgType>Alert")
    assert "no <info>" in refusal(no_info).message


def test_geocode_identity_and_area_cover() -> None:
    data = storm_with(
        "<area>\n",
        "<area><geocode><valueName>VN-ADM</valueName><value>thon-dong</value></geocode>\n",
    )
    result = mapped(data, CapMapping())
    # thon-dong is named; thon-doai is reached through the polygon.
    assert result.area_ids == ("thon-dong", "thon-doai")
    parent = storm_with(
        "<area>\n",
        "<area><geocode><valueName>VN-ADM</valueName><value>xa-an-hoa</value></geocode>\n",
    )
    assert mapped(parent, CapMapping()).area_ids == ("xa-an-hoa",)  # children are redundant


def test_cycle_in_area_tree_does_not_hang() -> None:
    looped = {"a": "b", "b": "a"}
    data = storm_with(
        "<area>\n", "<area><geocode><valueName>VN-ADM</valueName><value>a</value></geocode>\n"
    )
    result = map_alert(
        parse_cap(data), CapMapping(), areas=looped, nodes=[("n1", "b", None, None)], now=NOW
    )
    assert result.node_ids == ("n1",)


def test_speech_text_is_normalised_and_bounded() -> None:
    long = storm_with("Nước dâng 2 mét.", "Nước dâng 2 mét. " + "Sóng lớn ven bờ.  " * 300)
    result = mapped(long)
    assert len(result.text) <= 2000 and result.text.endswith("…")
    assert "  " not in result.text
    info = parse_cap(STORM).infos[0]
    assert speech_text(info, 100).endswith("…") and len(speech_text(info, 100)) <= 100


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        mapped(STORM, now=datetime(2026, 11, 28, 9, 0))


def test_mapping_validates_its_configuration() -> None:
    with pytest.raises(ValidationError):
        CapMapping(statuses={"Real": "live"})
    with pytest.raises(ValidationError):
        CapMapping(emergency_severities=frozenset({"Critical"}))


# Geometry ------------------------------------------------------------------------------------

SQUARE = ((0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0), (0.0, 0.0))
# A "U": the notch between lat 3..10 and lon 3..7 is outside.
U_SHAPE = (
    (0.0, 0.0),
    (0.0, 10.0),
    (10.0, 10.0),
    (10.0, 7.0),
    (3.0, 7.0),
    (3.0, 3.0),
    (10.0, 3.0),
    (10.0, 0.0),
    (0.0, 0.0),
)


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (5, 5, True),
        (11, 5, False),
        (-0.1, 5, False),
        (5, 10.1, False),
        (0, 5, True),
        (5, 0, True),
        (10, 10, True),
        (0, 0, True),  # edges and vertices count
    ],
)
def test_point_in_square(lat: float, lon: float, inside: bool) -> None:
    assert in_ring(lat, lon, SQUARE) is inside


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (5, 5, False),
        (5, 1, True),
        (5, 9, True),
        (1, 5, True),
        (3, 1, True),  # level with two vertices: the ray must not count them twice
        (3, 8, True),
        (3, -1, False),
        (10, 5, False),
        (7, 5, False),
    ],
)
def test_point_in_concave_ring(lat: float, lon: float, inside: bool) -> None:
    assert in_ring(lat, lon, U_SHAPE) is inside


def test_open_ring_is_closed_before_testing() -> None:
    assert in_ring(5, 5, SQUARE[:-1]) and not in_ring(5, 11, SQUARE[:-1])


def test_haversine_distances() -> None:
    assert distance_km(18.0, 105.0, 19.0, 105.0) == pytest.approx(111.19, abs=0.01)
    assert distance_km(21.0285, 105.8542, 10.8231, 106.6297) == pytest.approx(1137, abs=5)


def test_circle_boundary() -> None:
    circle = parse_cap(sample("fire_circle.xml")).infos[0].areas[0].circles[0]
    km_per_degree = math.pi * EARTH_RADIUS_KM / 180
    assert circle.covers(18.4 + 0.99 / km_per_degree, 105.95)
    assert not circle.covers(18.4 + 1.01 / km_per_degree, 105.95)
    assert circle.covers(18.4 + 1 / km_per_degree - 1e-9, 105.95)  # just inside the rim
    assert circle.covers(18.4, 105.95) and not circle.covers(18.4, 105.96)


# Export --------------------------------------------------------------------------------------

OURS = {
    "id": "radio-2026-0042",
    "sender": "ubnd.xa-an-hoa@radio.local",
    "sent": datetime(2026, 11, 28, 8, 15, tzinfo=VIETNAM),
    "status": "Actual",
    "msg_type": "Alert",
    "event": "Sạt lở đất",
    "headline": "Nguy cơ sạt lở <đồi> & suối",
    "description": "Mưa lớn kéo dài; đất đồi đã nứt.",
    "instruction": "Rời khỏi chân đồi.",
    "severity": "Severe",
    "urgency": "Immediate",
    "certainty": "Likely",
    "expires": datetime(2026, 11, 28, 19, 0, tzinfo=VIETNAM),
    "areas": [("thon-dong", "Thôn Đông"), ("thon-bac", "Thôn Bắc")],
    "polygons": [[(18.33, 105.89), (18.33, 105.92), (18.36, 105.92), (18.36, 105.89)]],
    "circles": [(18.4, 105.95, 0.5)],
    "category": "Geo",
}


def test_export_round_trip() -> None:
    document = export_cap(OURS)
    assert document.startswith(b"<?xml") and b"&lt;" in document and b"&amp;" in document
    alert = parse_cap(document)
    assert (alert.identifier, alert.sender, alert.sent) == (
        OURS["id"],
        OURS["sender"],
        OURS["sent"],
    )
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Alert", "Public")
    info = alert.infos[0]
    assert info.language == "vi-VN" and info.categories == ("Geo",)
    assert (info.event, info.headline, info.description, info.instruction) == (
        OURS["event"],
        OURS["headline"],
        OURS["description"],
        OURS["instruction"],
    )
    assert (info.severity, info.urgency, info.certainty) == ("Severe", "Immediate", "Likely")
    assert info.expires == OURS["expires"]
    assert [(a.geocodes, a.area_desc) for a in info.areas[:2]] == [
        ((("VN-ADM", "thon-dong"),), "Thôn Đông"),
        ((("VN-ADM", "thon-bac"),), "Thôn Bắc"),
    ]
    ring = info.areas[2].polygons[0]
    assert ring == (
        (18.33, 105.89),
        (18.33, 105.92),
        (18.36, 105.92),
        (18.36, 105.89),
        (18.33, 105.89),
    )
    assert info.areas[2].circles[0].radius_km == 0.5
    # And our own export maps back to the same areas with the default mapping.
    result = map_alert(alert, CapMapping(), areas=AREAS, nodes=NODES, now=NOW)
    assert result.area_ids == ("thon-dong", "thon-bac", "thon-doai")
    assert result.priority == "emergency" and result.title == OURS["headline"]


def test_export_test_update_with_references() -> None:
    first = parse_cap(export_cap(OURS))
    update = {
        **OURS,
        "id": "radio-2026-0043",
        "status": "Test",
        "msg_type": "Update",
        "references": [(first.sender, first.identifier, first.sent)],
        "sent": datetime(2026, 11, 28, 1, 30, tzinfo=UTC),
    }
    alert = parse_cap(export_cap(update))
    assert alert.status == "Test" and alert.msg_type == "Update"
    assert alert.references[0].identifier == "radio-2026-0042"
    assert alert.references[0].sent == OURS["sent"]
    assert alert.sent == datetime(2026, 11, 28, 8, 30, tzinfo=VIETNAM)
    assert mapped(export_cap(update), CapMapping()).test is True


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"sent": datetime(2026, 11, 28, 8, 15)}, "timezone-aware"),
        ({"event": ""}, "no event"),
        ({"severity": "Critical"}, "'Critical'"),
        ({"id": "has space"}, "spaces"),
        ({"msg_type": "Cancel"}, "references"),
    ],
)
def test_export_refuses_what_would_not_be_cap(change: dict, words: str) -> None:
    with pytest.raises(CapExportError) as caught:
        export_cap({**OURS, **change})
    assert words in str(caught.value)


# check_file and format_result ----------------------------------------------------------------


def check(name: str, mapping: CapMapping = MAPPING):
    return check_file(SAMPLES / name, areas=AREAS, nodes=NODES, mapping=mapping, now=NOW)


def test_check_and_format_accepted() -> None:
    result = check("storm_polygon.xml")
    assert result.ok and result.alert is not None
    assert format_result(result) == (
        "✔ storm_polygon.xml: khẩn cấp (emergency), 2 khu vực: thon-dong, thon-doai; "
        "hết hạn 13:30 28/11/2026; ngôn ngữ (language) vi-VN; 3 loa (loudspeakers); "
        "«Bão số 12 đổ bộ vào ven biển»"
    )
    assert format_result(check("flood_cancel.xml")).startswith(
        "✔ flood_cancel.xml: hủy (cancel) VN-KTTV-2026-1128-001, VN-KTTV-2026-1128-003"
    )
    assert "cập nhật (update) VN-KTTV-2026-1128-001" in format_result(check("flood_update.xml"))


def test_check_and_format_test_alert(tmp_path: Path) -> None:
    path = tmp_path / "drill.xml"
    path.write_bytes(storm_with("<status>Actual", "<status>Exercise"))
    line = format_result(check_file(path, areas=AREAS, nodes=NODES, now=NOW))
    assert line.startswith("✔ drill.xml: [THỬ NGHIỆM (TEST)] khẩn cấp (emergency)")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("billion_laughs.xml", "hostile"),
        ("xxe_file.xml", "hostile"),
        ("xxe_http.xml", "hostile"),
        ("doctype_only.xml", "hostile"),
        ("agencies/cap10_old.xml", "unsupported"),
        ("cap11.xml", "not_actionable"),  # read as CAP 1.2, but it has no <info>
        ("truncated.xml", "invalid"),
        ("missing_identifier.xml", "invalid"),
        ("bad_enum.xml", "invalid"),
        ("expired.xml", "expired"),
        ("minor.xml", "not_actionable"),
        ("no_match.xml", "no_targets"),
    ],
)
def test_check_and_format_refused(name: str, reason: str) -> None:
    result = check(name)
    assert not result.ok and result.refused is not None and result.refused.reason == reason
    # Refused only for now (expired, no area of ours): the check also says what it would raise.
    now_only = reason in ("expired", "no_targets")
    head = "bị từ chối lúc này (refused now)" if now_only else "bị từ chối (refused)"
    line = format_result(result)
    assert line.startswith(f"✘ {Path(name).name}: {head} — {reason}: ")
    assert ("sẽ phát (would raise)" in line) == now_only


def test_check_unreadable_and_oversized_files(tmp_path: Path) -> None:
    missing = check_file(tmp_path / "nope.xml", areas=AREAS, nodes=NODES, now=NOW)
    assert missing.refused is not None and missing.refused.reason == "unreadable"
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * (256 * 1024 + 1))
    result = check_file(big, areas=AREAS, nodes=NODES, now=NOW)
    assert result.refused is not None and result.refused.reason == "too_large"
