"""The embedded broker routes a message to the filters that match it, found by lookup (exact
filters) and among the wildcard filters only, not by comparing it with every node's filters."""

from __future__ import annotations

import asyncio

from controller.mqtt.embedded_broker import EmbeddedBroker, _Snapshots
from radio.tools import open_registry
from tests.conftest import free_port
from tests.controller.test_broker_access import client, seed


def test_the_table_keeps_its_wildcard_filters_apart():
    table = _Snapshots({"r/node/n1/timeline": [], "r/node/+/events": []})
    assert table.wildcards == {"r/node/+/events"}
    table["r/#"] = []
    table["r/node/n2/cmd"] = []
    assert table.wildcards == {"r/node/+/events", "r/#"}
    del table["r/#"]
    assert table.wildcards == {"r/node/+/events"}
    assert table.pop("r/node/+/events") == []
    assert table.wildcards == set()
    table["r/+/x"] = []
    assert sorted(table.matching("r/node/n2/cmd", lambda t, f: f == "r/+/x")) == [
        "r/+/x",
        "r/node/n2/cmd",
    ]
    assert table.matching("r/node/n9/cmd", lambda t, f: False) == []
    table.clear()
    assert table.wildcards == set() and table.matching("r/node/n2/cmd", lambda t, f: True) == []


async def test_a_message_reaches_exact_and_wildcard_subscribers_once_each(make_settings):
    settings = make_settings()
    registry = open_registry(settings)
    provs = seed(registry)
    t = registry.topics
    d = settings.broker_dir
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port, d / "passwd", d / "acl")
    await broker.start()
    ctl = registry.controller_login()
    try:
        async with (
            client(port, ctl.username, ctl.password) as wide,
            client(port, "n1", provs["n1"]["password"]) as n1,
        ):
            await wide.subscribe(f"{t.root}/node/+/timeline", qos=1)
            await n1.subscribe(t.timeline("n1"), qos=1)
            await n1.subscribe(t.cmd("n1"), qos=1)
            # From here on, note every filter a message is compared with.
            inner = broker._broker
            compared: list[str] = []
            original = inner._matches

            def noting(topic: str, a_filter: str) -> bool:
                compared.append(a_filter)
                return original(topic, a_filter)

            inner._matches = noting  # type: ignore[method-assign]
            await wide.publish(t.timeline("n1"), b"v1", qos=1)
            await wide.publish(t.timeline("n2"), b"v2", qos=1)  # not n1's
            await wide.publish(t.timeline("n1"), b"v3", qos=1)
            async with asyncio.timeout(10):
                got_wide = [await anext(aiter(wide.messages)) for _ in range(3)]
                got_n1 = [await anext(aiter(n1.messages)) for _ in range(2)]
            assert [m.payload for m in got_wide] == [b"v1", b"v2", b"v3"]
            # In order from one publisher: v2, had it reached n1, would have come before v3.
            assert [m.payload for m in got_n1] == [b"v1", b"v3"]
            # Only the wildcard filter was compared (once per message); the exact filters
            # (n1's timeline and commands, the controller's) were looked up, not compared.
            assert compared == [f"{t.root}/node/+/timeline"] * 3
    finally:
        await broker.stop()
