"""Named groups of loudspeakers within one area, used as schedule targets."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlmodel import Session, col, select

from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import (
    Area,
    Node,
    NodeGroup,
    NodeGroupMember,
    Schedule,
    ScheduleStatus,
    ScheduleTarget,
)
from schedules import AreaTree

GROUP_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_MEMBERS = 5000


def members(session: Session, group_ids: Iterable[str]) -> dict[str, set[str]]:
    """Each group's member nodes (retired ones included; the timeline skips them)."""
    ids = set(group_ids)
    out: dict[str, set[str]] = {g: set() for g in ids}
    if ids:
        for m in session.exec(
            select(NodeGroupMember).where(col(NodeGroupMember.group_id).in_(ids))
        ).all():
            out[m.group_id].add(m.node_id)
    return out


def check_members(session: Session, tree: AreaTree, area_id: str, node_ids: list[str]) -> None:
    """Every member exists, is in service, and lies within the group's area."""
    if len(node_ids) > MAX_MEMBERS:
        raise Invalid(f"{len(node_ids)} nodes; a group holds at most {MAX_MEMBERS}")
    for node_id in node_ids:
        node = session.get(Node, node_id)
        if node is None or node.retired:
            raise Invalid(f"node {node_id!r} does not exist or is retired")
        if not tree.contains(area_id, node.area_id):
            raise Invalid(f"node {node_id!r} is in {node.area_id}, outside the group's {area_id}")


def create_group(
    session: Session,
    tree: AreaTree,
    group_id: str,
    name: str,
    area_id: str,
    node_ids: list[str],
    author: str,
) -> NodeGroup:
    if not GROUP_ID.match(group_id):
        raise Invalid(f"group id {group_id!r}: use lower-case letters, digits, '.', '_' or '-'")
    if not name.strip():
        raise Invalid("name is empty: give the group a name people recognise")
    if session.get(Area, area_id) is None:
        raise Invalid(f"area {area_id!r} does not exist")
    if session.get(NodeGroup, group_id) is not None:
        raise Conflict(f"group {group_id!r} already exists")
    check_members(session, tree, area_id, node_ids)
    group = NodeGroup(id=group_id, name=name.strip(), area_id=area_id, created_by=author)
    session.add(group)
    session.flush()
    set_members(session, group, node_ids)
    return group


def set_members(session: Session, group: NodeGroup, node_ids: list[str]) -> None:
    for old in session.exec(select(NodeGroupMember).where(NodeGroupMember.group_id == group.id)):
        session.delete(old)
    session.flush()
    for node_id in dict.fromkeys(node_ids):
        session.add(NodeGroupMember(group_id=group.id, node_id=node_id))


def get_group(session: Session, group_id: str) -> NodeGroup:
    group = session.get(NodeGroup, group_id)
    if group is None:
        raise NotFound(f"group {group_id!r} does not exist")
    return group


def delete_group(session: Session, group: NodeGroup) -> None:
    used = session.exec(
        select(ScheduleTarget.schedule_id)
        .join(Schedule, col(Schedule.id) == col(ScheduleTarget.schedule_id))
        .where(ScheduleTarget.kind == "group", ScheduleTarget.target_id == group.id)
        .where(col(Schedule.status).in_((ScheduleStatus.scheduled, ScheduleStatus.pending)))
        .limit(1)
    ).first()
    if used is not None:
        raise Conflict(f"group {group.id!r} is a target of schedule {used}: change that first")
    set_members(session, group, [])
    session.delete(group)
