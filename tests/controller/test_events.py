"""The controller's events: typed, heard by kind, unsubscribed by a handle, and a listener that
raises or falls behind costs the others (and the publisher) nothing."""

from __future__ import annotations

import json
import logging

import pytest

from controller.core.events import (
    AlarmChanged,
    AlertChanged,
    AlertReceiptStored,
    Changes,
    CommandAckHeard,
    DeliveryChanged,
    Event,
    NodeStatusChanged,
)
from protocol import CommandAck
from tests.conftest import running_controller, wait_for

ONLINE = NodeStatusChanged("n1", "online")
RECEIPT = AlertReceiptStored("a1", "n1", "alert_started")


def test_a_listener_hears_only_its_kinds_until_it_closes_its_handle() -> None:
    changes = Changes()
    nodes: list[NodeStatusChanged] = []
    both: list[NodeStatusChanged | AlertReceiptStored] = []
    handle = changes.subscribe(NodeStatusChanged, nodes.append)
    changes.subscribe((NodeStatusChanged, AlertReceiptStored), both.append)
    changes.publish(ONLINE)
    changes.publish(RECEIPT)
    changes.publish(DeliveryChanged("n1", 3, "s3@1", "started"))
    assert nodes == [ONLINE]
    assert both == [ONLINE, RECEIPT]
    assert not handle.closed
    handle.close()
    assert handle.closed
    handle.close()  # twice: nothing more happens
    changes.publish(NodeStatusChanged("n1", "offline"))
    assert nodes == [ONLINE]
    assert len(both) == 3
    assert len(changes) == 1


def test_leaving_the_with_block_unsubscribes_even_on_an_error() -> None:
    changes = Changes()
    heard: list[Event] = []
    with pytest.raises(RuntimeError), changes.subscribe(NodeStatusChanged, heard.append):
        changes.publish(ONLINE)
        raise RuntimeError("the view's request ended badly")
    changes.publish(ONLINE)
    assert heard == [ONLINE]
    assert len(changes) == 0


def test_a_listener_that_raises_is_logged_and_counted_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes = Changes()
    before: list[Event] = []
    after: list[Event] = []

    def broken(_event: NodeStatusChanged) -> None:
        raise ValueError("a bug in one listener")

    changes.subscribe(NodeStatusChanged, before.append)
    changes.subscribe(NodeStatusChanged, broken, "broken listener")
    changes.subscribe(NodeStatusChanged, after.append)
    with caplog.at_level(logging.ERROR, "controller.core.events"):
        changes.publish(ONLINE)  # the publisher is not told
        changes.publish(ONLINE)
    assert before == [ONLINE, ONLINE]
    assert after == [ONLINE, ONLINE]
    assert changes.failures == {"broken listener": 2}
    assert "broken listener" in caplog.text and "a bug in one listener" in caplog.text


def test_a_listener_may_unsubscribe_itself_or_another_while_hearing() -> None:
    changes = Changes()
    heard: list[str] = []

    def first(_event: NodeStatusChanged) -> None:
        heard.append("first")
        mine.close()
        theirs.close()

    mine = changes.subscribe(NodeStatusChanged, first)
    theirs = changes.subscribe(NodeStatusChanged, lambda _e: heard.append("second"))
    changes.publish(ONLINE)
    changes.publish(ONLINE)
    # Those subscribed when the event was published hear it; after that, nobody.
    assert heard == ["first", "second"]


async def test_a_live_view_that_falls_behind_loses_only_its_own_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes = Changes()
    everything: list[NodeStatusChanged] = []
    changes.subscribe(NodeStatusChanged, everything.append)
    slow = changes.listen(NodeStatusChanged, "slow view", maxsize=2)
    quick = changes.listen(NodeStatusChanged, "quick view", maxsize=10)
    sent = [NodeStatusChanged(f"n{i}", "online") for i in range(5)]
    with caplog.at_level(logging.WARNING, "controller.core.events"):
        for event in sent:
            changes.publish(event)  # never waits for a reader
    assert everything == sent
    assert [await quick.get(0) for _ in sent] == sent
    assert await slow.get(0) == sent[0]
    assert await slow.get(0) == sent[1]
    assert await slow.get(0) is None  # the other three were dropped for it
    assert slow.dropped == 3 and quick.dropped == 0
    assert changes.dropped == {"slow view": 3}
    assert "slow view falls behind" in caplog.text
    # Caught up, it hears what comes next.
    changes.publish(sent[0])
    assert await slow.get(0) == sent[0]
    with slow, quick:
        pass
    assert len(changes) == 1


async def test_a_live_view_hears_the_kinds_it_asked_for() -> None:
    changes = Changes()
    with changes.listen((AlertChanged, AlertReceiptStored), "alert view") as view:
        changes.publish(ONLINE)
        changes.publish(AlertChanged("a1", "active", 2))
        changes.publish(RECEIPT)
        assert await view.get(0) == AlertChanged("a1", "active", 2)
        assert await view.get(0) == RECEIPT
        assert await view.get(0) is None
    assert view.closed


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        ONLINE.status = "offline"  # type: ignore[misc]


def test_the_wire_forms_are_the_api_event_streams() -> None:
    presence = {
        "type": "node",
        "node_id": "n1",
        "area_id": "thon-1",
        "status": "offline",
        "state": "flapping",
        "reason": "heartbeat_timeout",
    }
    assert NodeStatusChanged.from_presence(presence).wire() == presence
    assert list(NodeStatusChanged.from_presence(presence).wire()) == list(presence)
    assert ONLINE.wire() == {"type": "node", "node_id": "n1", "status": "online"}
    assert DeliveryChanged("n1", 3, "s3@1", "started", 120).wire() == {
        "type": "delivery",
        "node_id": "n1",
        "schedule_id": 3,
        "item_id": "s3@1",
        "state": "started",
        "latency_ms": 120,
    }
    assert "latency_ms" not in DeliveryChanged("n1", 3, "s3@1", "downloaded").wire()
    assert AlertChanged("a1", "cancelled").wire() == {
        "type": "alert",
        "alert_id": "a1",
        "status": "cancelled",
    }
    assert AlertChanged("a1", "active", 2).wire()["version"] == 2
    assert RECEIPT.wire() == {
        "type": "alert_receipt",
        "alert_id": "a1",
        "node_id": "n1",
        "event": "alert_started",
    }
    snapshot = {
        "id": 7,
        "node_id": "n1",
        "kind": "speaker_fault",
        "state": "active",
        "detail": "impedance open",
        "type": "alarm",
        "change": "raised",
        "area_id": "thon-1",
    }
    alarm = AlarmChanged.from_snapshot(snapshot)
    assert (alarm.alarm_id, alarm.alarm, alarm.change, alarm.area_id) == (
        7,
        "speaker_fault",
        "raised",
        "thon-1",
    )
    assert alarm.wire() == snapshot and list(alarm.wire()) == list(snapshot)
    ack = CommandAck(cmd_id="c1", node_id="n1", ok=True, ts=1)
    assert CommandAckHeard("n1", ack).wire()["ack"]["cmd_id"] == "c1"


async def test_a_live_view_subscribes_for_as_long_as_its_client_stays(make_settings) -> None:
    """The API's alarm stream hears the service's events in their wire form, and lets go of its
    subscription when the client leaves."""
    async with running_controller(make_settings()) as ctl:
        changes = ctl.service.changes
        before = len(changes)
        change = NodeStatusChanged("n9", "offline", None, "offline", "heartbeat_timeout")
        headers = {"Authorization": f"Bearer {ctl.token}"}
        url = f"{ctl.base_url}/api/v1/alarms/events"
        async with ctl.http.stream("GET", url, headers=headers) as r:
            assert r.status_code == 200
            lines = (line async for line in r.aiter_lines() if line)  # blank: an event's end
            assert await anext(lines) == ": connected"
            assert len(changes) == before + 1
            changes.publish(change)
            assert await anext(lines) == "event: node"
            assert json.loads((await anext(lines)).removeprefix("data: ")) == change.wire()
        await wait_for(lambda: len(changes) == before, 30, "the stream to unsubscribe")
