"""What the checks share: the evidence list, and waiting for events in order."""

from __future__ import annotations

from conformance.kit import Kit
from conformance.report import CheckFailed
from protocol import NodeEvent

Evidence = list[str]


def position(kit: Kit, event: NodeEvent) -> int:
    return next(i for i, h in enumerate(kit.heard) if h.report is event)


def in_order(kit: Kit, events: list[NodeEvent]) -> None:
    positions = [position(kit, e) for e in events]
    if positions != sorted(positions):
        got = [e.type for e in sorted(events, key=lambda e: position(kit, e))]
        raise CheckFailed(f"reports out of order: {', '.join(got)}")


async def expect(kit: Kit, ev: Evidence, type: str, what: str, **fields: object) -> NodeEvent:
    event = await kit.wait_for(lambda: kit.matching(type, fields), f"{type} for {what}")
    ev.append(f"{type} for {what} (event {event.id[:12]}, ts {event.ts})")
    return event
