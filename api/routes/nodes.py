"""Nodes: the registry with each node's state and open alarms, filtered for technicians;
a node's telemetry history and its timeline of events."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query, status

from api.deps import GuardDep, ServiceDep, SessionDep
from api.health_schemas import (
    FleetTotals,
    NodeEventPublic,
    NodeHealthPublic,
    NodeList,
    TelemetryHistory,
)
from api.schemas import NodeCreate, NodeProvisioned, NodePublic
from controller.auth.access import Permission
from controller.core.config import ConfigError
from controller.core.errors import Invalid, Misconfigured, NotFound
from controller.core.models import Node
from controller.core.time import LOCAL, utc_datetime
from controller.fleet.registry import RegistryError
from controller.health.alarms import AlarmKind
from controller.health.fleet_view import (
    NodeFilter,
    NodeHealthRow,
    find,
    open_alarm_kinds,
    timeline,
)
from controller.health.telemetry import TelemetryStore

router = APIRouter(prefix="/nodes", tags=["nodes"])


def health_public(row: NodeHealthRow, store: TelemetryStore) -> NodeHealthPublic:
    # `row.node` is a Node or a row of the fleet view's columns: both have these attributes.
    fields = {name: getattr(row.node, name) for name in NodePublic.model_fields}
    offset = store.clock_offset(row.node.id)
    latest = store.latest.get(row.node.id)
    telemetry = None
    if latest is not None:
        telemetry = latest.report._asdict() | {"received": latest.received}
    return NodeHealthPublic.model_validate(
        {
            **fields,
            "state": row.state,
            "alarms": row.alarms,
            "clock": None if offset is None else asdict(offset),
            "telemetry": telemetry,
        }
    )


PAGE_MAX = 500


@router.get("", response_model=NodeList)
def list_nodes(
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    area_id: str | None = Query(default=None, max_length=64, description="This area and below"),
    status: str | None = Query(
        default=None, max_length=16, description="Raw status: online, offline, lost, unknown"
    ),
    state: Literal["online", "offline", "flapping", "unknown"] | None = None,
    alarm: AlarmKind | Literal["any", "none"] | None = Query(
        default=None, description="Nodes with an alarm of this kind not cleared (any, none)"
    ),
    firmware: str | None = Query(default=None, max_length=100, description="Exact version"),
    q: str | None = Query(
        default=None,
        max_length=100,
        description="In the id or the name, whatever the case; typed without marks, it also "
        "finds names written with them (dong xuan: Đồng Xuân)",
    ),
    node_id: list[str] = Query(
        default=[],
        alias="id",
        max_length=PAGE_MAX,
        description="Only these nodes (repeat the parameter: id=a&id=b)",
    ),
    include_retired: bool = False,
    after: str | None = Query(
        default=None,
        max_length=64,
        description="Start after this node id (the `next_after` of the page before): a page "
        "deep in the list as fast as the first",
    ),
    before: str | None = Query(
        default=None,
        min_length=1,
        max_length=64,
        description="End before this node id (the `prev_before` of the page after): the page "
        "before it, as fast as the first",
    ),
    last: bool = Query(
        default=False,
        description="The list's last page as pages of `limit` counted from the start cut it "
        "(the remainder, or a full page when `limit` divides the total), as fast as the first",
    ),
    offset: int = Query(
        default=0,
        ge=0,
        le=10_000_000,
        description="Rows to skip (after `after`); the database walks them, so a page deep in "
        "a long list is slower than by `after`",
    ),
    limit: int = Query(default=100, ge=1, le=PAGE_MAX, description=f"At most {PAGE_MAX}"),
) -> NodeList:
    """The nodes you may see, a page at a time, ordered by id."""
    guard.check(Permission.read)
    cursors = (after is not None, before is not None, last)
    if sum(cursors) > 1 or (offset and (before is not None or last)):
        raise Invalid(
            "give one of after, before and last; offset only from the start or after `after`",
            code="page_cursors",
        )
    scope = guard.tree.descendants(area_id) if area_id is not None else set(guard.tree.parents)
    areas: set[str] | None = {a for a in scope if guard.sees(a)}
    if area_id is None and len(areas or ()) == len(scope):
        areas = None  # every area: no need to test each node's
    query = NodeFilter(
        areas=None if areas is None else frozenset(areas),
        status=status,
        state=state,
        alarm=None if alarm is None else str(alarm),
        firmware=firmware,
        text=(q or "").strip() or None,
        include_retired=include_retired,
        ids=frozenset(i[:64] for i in node_id) or None,
    )
    page = find(session, service.health.presence, query, offset, limit, after, before, last)
    return NodeList(
        items=[health_public(row, service.health.telemetry) for row in page.rows],
        total=page.total,
        offset=offset,
        limit=limit,
        next_after=page.rows[-1].node.id if page.more else None,
        prev_before=page.rows[0].node.id if page.earlier else None,
        counts=FleetTotals.model_validate(page.counts),
    )


def visible(session: SessionDep, guard: GuardDep, node_id: str) -> Node:
    node = session.get(Node, node_id[:64])
    if node is None or not guard.sees(node.area_id):
        raise NotFound(f"node {node_id!r} does not exist")
    return node


@router.get("/{node_id}", response_model=NodeHealthPublic)
def get_node(
    node_id: str, guard: GuardDep, session: SessionDep, service: ServiceDep
) -> NodeHealthPublic:
    guard.check(Permission.read)
    node = visible(session, guard, node_id)
    kinds = sorted(open_alarm_kinds(session).get(node.id, []))
    row = NodeHealthRow(node, service.health.presence.state_of(node), kinds)
    return health_public(row, service.health.telemetry)


def window(
    start: datetime | None, end: datetime | None, now: datetime, default: timedelta
) -> tuple[datetime, datetime]:
    """from/to as UTC; a time without an offset is Asia/Ho_Chi_Minh."""
    try:
        end_utc = (end.replace(tzinfo=end.tzinfo or LOCAL) if end else now).astimezone(UTC)
        start_utc = (
            start.replace(tzinfo=start.tzinfo or LOCAL) if start else end_utc - default
        ).astimezone(UTC)
    except (OverflowError, ValueError):
        raise Invalid(
            "from/to are out of range: give ISO 8601 times such as 2026-12-14T07:30"
        ) from None
    if start_utc >= end_utc:
        raise Invalid("'from' must be before 'to'")
    return start_utc, end_utc


@router.get("/{node_id}/telemetry", response_model=TelemetryHistory)
def node_telemetry(
    node_id: str,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    start: datetime | None = Query(default=None, alias="from", description="Default: to − 24 h"),
    end: datetime | None = Query(default=None, alias="to", description="Default: now"),
) -> TelemetryHistory:
    """Every heartbeat for ranges up to 48 h within the full-resolution period, else hourly
    minimum / average / maximum."""
    guard.check(Permission.read)
    node = visible(session, guard, node_id)
    now = utc_datetime(service.clock.now_ms())
    first, last = window(start, end, now, timedelta(hours=24))
    if last - first > timedelta(days=service.settings.telemetry_keep_days + 1):
        raise Invalid(
            f"range too long: history is kept {service.settings.telemetry_keep_days:g} days"
        )
    resolution, points = service.health.telemetry.history(session, node.id, first, last, now)
    return TelemetryHistory(
        node_id=node.id, resolution=resolution, start=first, end=last, points=points
    )


@router.get("/{node_id}/events", response_model=list[NodeEventPublic])
def node_events(
    node_id: str,
    guard: GuardDep,
    session: SessionDep,
    service: ServiceDep,
    start: datetime | None = Query(default=None, alias="from", description="Default: to − 7 days"),
    end: datetime | None = Query(default=None, alias="to", description="Default: now"),
    limit: int = Query(default=200, ge=1, le=2000),
) -> list[NodeEventPublic]:
    """The node's timeline, newest first: state changes, alarms, what the node reported."""
    guard.check(Permission.read)
    node = visible(session, guard, node_id)
    now = utc_datetime(service.clock.now_ms())
    first, last = window(start, end, now + timedelta(seconds=1), timedelta(days=7))
    return [NodeEventPublic(**e) for e in timeline(session, node.id, first, last, limit)]


@router.post("", response_model=NodeProvisioned, status_code=status.HTTP_201_CREATED)
async def create_node(body: NodeCreate, guard: GuardDep, service: ServiceDep) -> NodeProvisioned:
    guard.check(Permission.manage_nodes, [body.area_id])
    with service.db.session() as session:
        try:
            node, provisioning = service.registry.add_node(
                session,
                body.id,
                body.name,
                body.area_id,
                lat=body.lat,
                lon=body.lon,
                hardware=body.hardware,
            )
        except RegistryError as exc:
            raise Invalid(str(exc)) from exc
        except ConfigError as exc:  # no address nodes can reach
            raise Misconfigured(str(exc)) from None
        session.commit()
        public = NodePublic.model_validate(node, from_attributes=True)
    # Also kept in the controller's data directory, like a file provisioned again.
    await asyncio.to_thread(service.registry.write_provisioning, provisioning)
    guard.audit("node.create", body.id, body.model_dump(mode="json"))
    await service.nodes_changed()
    return NodeProvisioned(node=public, provisioning=provisioning)
