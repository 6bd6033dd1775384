"""Checks of how a node answers and reports: every command answered, reports kept while the
controller is away and sent once, every report within the contract."""

from __future__ import annotations

import time
from collections import Counter

from conformance.check_common import Evidence
from conformance.kit import Kit
from conformance.report import CheckFailed
from protocol import NodeEvent


async def answers_commands(kit: Kit, ev: Evidence) -> None:
    cases: list[tuple[str, dict[str, object], bool]] = [
        ("volume", {"level": 55}, True),
        ("stop", {}, True),
        ("test_tone", {"duration_ms": 300}, True),
        ("resync", {}, True),
        ("volume", {"level": 500}, False),
        ("conf_no_such_command", {}, False),
    ]
    for command, args, ok in cases:
        ack = await kit.command(command, args)
        ev.append(f"{command} {args}: ok={ack.ok} {ack.detail!r}")
        if ack.ok != ok:
            raise CheckFailed(
                f"{command} {args} answered ok={ack.ok}, expected ok={ok} ({ack.detail!r})"
            )
    before = kit.states()
    boot = before[-1].boot if before else 0
    mark = time.monotonic()
    ack = await kit.command("reboot")
    ev.append(f"reboot: ok={ack.ok} {ack.detail!r}")
    if not ack.ok:
        raise CheckFailed(f"reboot refused: {ack.detail!r}")
    state = await kit.wait_for(
        lambda: next((s for s in kit.states(mark) if s.status == "online" and s.boot > boot), None),
        f"online state with a boot counter above {boot} after the reboot",
    )
    ev.append(f"back online with boot {state.boot}")
    await kit.sync_after_restart()


async def _report_while_away(kit: Kit, ev: Evidence) -> int:
    """With the controller offline, make the node report something; its timeline version."""
    await kit.controller_state(online=False)
    version = await kit.push_timeline(kit.timeline_items)
    await kit.sync()  # the timeline is handled (commands are answered while it is away)
    await kit.sync()
    ev.append(f"controller offline; timeline v{version} pushed and two commands answered")
    return version


async def reports_held_while_controller_away(kit: Kit, ev: Evidence) -> None:
    version = await _report_while_away(kit, ev)
    early = kit.event("timeline_applied", timeline_version=version)
    await kit.controller_state(online=True)
    if early is not None:
        raise CheckFailed(
            f"timeline_applied v{version} was sent while the controller was offline (the "
            "broker drops what no controller takes: it is lost)"
        )
    mark = time.monotonic()
    await kit.wait_for(
        lambda: kit.event("timeline_applied", timeline_version=version),
        f"timeline_applied v{version}, kept while the controller was away",
    )
    ev.append(f"sent {time.monotonic() - mark:.2f} s after the controller came back")


async def reports_sent_once(kit: Kit, ev: Evidence) -> None:
    version = await _report_while_away(kit, ev)
    await kit.controller_state(online=True)
    await kit.wait_for(
        lambda: kit.event("timeline_applied", timeline_version=version),
        f"timeline_applied v{version} after the controller came back",
    )
    await kit.events_barrier()
    # Since the node's last start: a stop may cut off the acknowledgement of the event being
    # sent, which then comes again after the start (at least once, de-duplicated by id).
    before = {
        h.report.id for h in kit.heard if h.at < kit.started_at and isinstance(h.report, NodeEvent)
    }
    recent = [e for e in kit.events(since=kit.started_at) if e.id not in before]
    ids = Counter(e.id for e in recent)
    twice = {i: n for i, n in ids.items() if n > 1}
    if twice:
        types = sorted({str(e.type) for e in recent if e.id in twice})
        raise CheckFailed(
            f"{len(twice)} event id(s) sent more than once (e.g. {types}): reports must be "
            "sent once after they are acknowledged"
        )
    ev.append(f"{len(ids)} events since the node's last start, each id once")


async def no_event_arrays_unless_read(kit: Kit, ev: Evidence) -> None:
    """Events kept while the controller was away go out once it is back: one per message when
    its state does not say `event_arrays`."""
    await _report_while_away(kit, ev)
    version = await kit.push_timeline(kit.timeline_items)  # a second event kept meanwhile
    await kit.sync()
    mark = time.monotonic()
    await kit.controller_state(online=True, event_arrays=False)
    try:
        await kit.wait_for(
            lambda: kit.event("timeline_applied", timeline_version=version),
            f"timeline_applied v{version} after the controller came back",
        )
        await kit.events_barrier()
    finally:
        await kit.controller_state(online=True)
    sent = [(h.report, h.together) for h in kit.heard if h.at >= mark]
    events = [(e, with_others) for e, with_others in sent if isinstance(e, NodeEvent)]
    together = [str(e.type) for e, with_others in events if with_others]
    if together:
        raise CheckFailed(
            f"{len(together)} events (e.g. {together[:3]}) came several to a message to a "
            "controller whose state did not say event_arrays (an older controller drops them)"
        )
    ev.append(f"{len(events)} events after the controller came back, one per message")


async def reports_follow_contract(kit: Kit, ev: Evidence) -> None:
    if kit.invalid:
        raise CheckFailed(f"{len(kit.invalid)} report(s) broke the contract: {kit.invalid[:3]}")
    ev.append(f"{len(kit.heard)} reports parsed by protocol.parse_node_reports")
