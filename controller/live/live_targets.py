"""Where a live broadcast may go: its targets exist, and a normal one keeps out of quiet hours."""

from __future__ import annotations

from sqlmodel import Session, col, select

from controller.core.errors import Invalid
from controller.core.models import Node
from controller.fleet.groups import members
from controller.fleet.registry import Registry
from controller.programme.broadcasts import Targets, ensure_targets_exist
from controller.programme.occurrences import quiet_map
from controller.programme.timelines import affected_nodes
from protocol import Priority
from schedules import AreaTree, Candidate, QuietHoursViolation, ensure_quiet


def check_targets(
    session: Session,
    tree: AreaTree,
    targets: Targets,
    priority: Priority,
    now_ms: int,
    planned_ms: int,
) -> set[str]:
    """The loudspeakers the targets reach; Invalid names the first target to fix."""
    ensure_targets_exist(session, targets)
    live = select(Node.id, Node.area_id).where(col(Node.retired).is_(False))
    node_areas = dict(session.exec(live).all())
    reached = set(targets.nodes)
    for group in members(session, targets.groups).values():
        reached |= group
    reached |= {
        n for n, area in node_areas.items() if any(a in targets.areas for a in tree.lineage(area))
    }
    if not reached:
        raise Invalid("the targets have no loudspeaker: register nodes there first")
    if priority == Priority.normal:
        areas = list(targets.areas) + [node_areas[n] for n in reached if n in node_areas]
        candidate = Candidate("live", "live", now_ms, planned_ms, priority, "live broadcast")
        try:
            ensure_quiet([candidate], areas, tree, quiet_map(session))
        except QuietHoursViolation as exc:
            raise Invalid(
                f"{exc}; a normal live broadcast may not run into quiet hours: use priority, or "
                "a shorter max_minutes"
            ) from exc
    return reached


def reached_nodes(session: Session, registry: Registry, schedule_id: int) -> set[str]:
    return affected_nodes(session, registry, schedule_id)
