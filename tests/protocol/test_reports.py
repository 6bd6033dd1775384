"""Everything a node publishes is parsed safely: bad payloads raise ProtocolError, nothing else."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    NodeEvent,
    ProtocolError,
    Telemetry,
    Topics,
    parse_node_report,
    parse_node_reports,
)

T = Topics("radio")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
leaves = st.sampled_from(["state", "telemetry", "events", "cmd/ack", "timeline", "x"])


@settings(max_examples=300, deadline=None)
@given(leaf=leaves, payload=st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(leaf: str, payload: bytes) -> None:
    try:
        parse_node_report(T, f"radio/v1/node/n1/{leaf}", payload)
    except ProtocolError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(leaf=leaves, data=st.dictionaries(st.text(max_size=15), json_values, max_size=8))
def test_random_json_objects_never_crash_the_parser(leaf: str, data: dict) -> None:
    payload = json.dumps(data, allow_nan=True).encode()
    try:
        parse_node_report(T, f"radio/v1/node/n1/{leaf}", payload)
    except ProtocolError as exc:
        assert exc.reason


@settings(max_examples=200, deadline=None)
@given(topic=st.text(max_size=80))
def test_random_topics_are_refused_cleanly(topic: str) -> None:
    try:
        parse_node_report(T, topic, b"{}")
    except ProtocolError as exc:
        assert exc.reason in {"unknown_topic", "invalid_fields", "node_mismatch"}


def test_a_valid_event_parses() -> None:
    ev = NodeEvent(id=uuid.uuid4().hex, node_id="n1", ts=1, type="playback_started", item_id="x")
    node_id, kind, report = parse_node_report(
        T, "radio/v1/node/n1/events", ev.model_dump_json().encode()
    )
    assert (node_id, kind, report) == ("n1", "events", ev)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("radio/v1/node/n1/telemetry", b"not json", "malformed_json"),
        ("radio/v1/node/n1/telemetry", b"[1,2]", "malformed_json"),
        ("radio/v1/node/n1/telemetry", b'{"v":2,"node_id":"n1","ts":1}', "unsupported_version"),
        ("radio/v1/node/n1/telemetry", b'{"node_id":"n1","ts":-5}', "invalid_fields"),
        ("radio/v1/node/n1/telemetry", b'{"node_id":"n1","ts":1,"volume":900}', "invalid_fields"),
        ("radio/v1/node/n1/telemetry", b'{"node_id":"n2","ts":1}', "node_mismatch"),
        ("radio/v1/node/N#/telemetry", b"{}", "unknown_topic"),
        ("radio/v1/node/n1/other", b"{}", "unknown_topic"),
        ("radio/v1/node/n1/telemetry", b" " * 70_000, "too_large"),
    ],
)
def test_bad_reports_name_their_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_node_report(T, topic, payload)
    assert err.value.reason == reason


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    payload = json.dumps({"node_id": "n1", "ts": 5, "future_field": [1]}).encode()
    _, _, report = parse_node_report(T, "radio/v1/node/n1/telemetry", payload)
    assert isinstance(report, Telemetry) and report.ts == 5


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=6), max_size=5))
def test_random_lists_of_events_never_crash_the_parser(items: list) -> None:
    payload = json.dumps(items, allow_nan=True).encode()
    try:
        got = parse_node_reports(T, "radio/v1/node/n1/events", payload)
    except ProtocolError as exc:
        assert exc.reason
    else:
        assert len(got.reports) + len(got.refused) == len(items)


def test_events_sent_together_are_each_taken_or_refused_on_their_own() -> None:
    def ev(i: int, node: str = "n1") -> dict:
        e = NodeEvent(id=f"{i:032x}", node_id=node, ts=i, type="alert_received", item_id="a")
        return e.model_dump(mode="json")

    payload = json.dumps([ev(1), {"id": "x"}, ev(2, node="n2"), 7, ev(3)]).encode()
    got = parse_node_reports(T, "radio/v1/node/n1/events", payload)
    assert (got.node_id, got.kind) == ("n1", "events")
    assert [r.ts for r in got.reports] == [1, 3]  # in the order sent
    assert [e.reason for e in got.refused] == ["invalid_fields", "node_mismatch", "malformed_json"]
    assert got.refused[1].detail.startswith("event 2: ")
    # One event alone is read as before, by either parser.
    one = json.dumps(ev(4)).encode()
    assert parse_node_reports(T, "radio/v1/node/n1/events", one).reports[0].ts == 4
    assert parse_node_report(T, "radio/v1/node/n1/events", one)[2].ts == 4  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("radio/v1/node/n1/events", b"[]"),  # nothing in it
        ("radio/v1/node/n1/telemetry", b"[{}]"),  # only events go several to a message
        ("radio/v1/node/n1/events", b"[" * 100_000),  # too large before it is parsed
        ("radio/v1/node/n1/events", b"[" * 60_000),  # nested past the parser's depth
        ("radio/v1/node/n1/events", b"[" + b",".join([b"{}"] * 101) + b"]"),  # over 100
    ],
)
def test_bad_lists_of_events_are_refused_whole(topic: str, payload: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_node_reports(T, topic, payload)
    assert err.value.reason in {"malformed_json", "too_large", "too_many_events"}
