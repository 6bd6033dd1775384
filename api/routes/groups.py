"""Named groups of loudspeakers (e.g. "the market horns"), for schedules to target."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session, col, select

from api.content_schemas import GroupCreate, GroupMembers, GroupPublic
from api.deps import GuardDep, ServiceDep, SessionDep
from controller.auth.access import Permission
from controller.core.errors import NotFound
from controller.core.models import NodeGroup
from controller.fleet.groups import (
    check_members,
    create_group,
    delete_group,
    get_group,
    members,
    set_members,
)

router = APIRouter(prefix="/groups", tags=["groups"])


def public(session: Session, group: NodeGroup) -> GroupPublic:
    return GroupPublic(
        id=group.id,
        name=group.name,
        area_id=group.area_id,
        nodes=sorted(members(session, [group.id])[group.id]),
        created_by=group.created_by,
    )


def _seen(guard: GuardDep, session: Session, group_id: str) -> NodeGroup:
    group = get_group(session, group_id)
    if not guard.sees(group.area_id):
        raise NotFound(f"group {group_id!r} does not exist")
    return group


@router.get("", response_model=list[GroupPublic])
def list_groups(guard: GuardDep, session: SessionDep) -> list[GroupPublic]:
    guard.check(Permission.read)
    rows = session.exec(select(NodeGroup).order_by(col(NodeGroup.id))).all()
    return [public(session, g) for g in rows if guard.sees(g.area_id)]


@router.get("/{group_id}", response_model=GroupPublic)
def get_one(group_id: str, guard: GuardDep, session: SessionDep) -> GroupPublic:
    guard.check(Permission.read)
    return public(session, _seen(guard, session, group_id))


@router.post("", response_model=GroupPublic, status_code=status.HTTP_201_CREATED)
def create(body: GroupCreate, guard: GuardDep, session: SessionDep) -> GroupPublic:
    guard.check(Permission.schedule, [body.area_id])
    group = create_group(
        session, guard.tree, body.id, body.name, body.area_id, body.nodes, guard.user.username
    )
    session.commit()
    guard.audit("group.create", body.id, body.model_dump(mode="json"))
    return public(session, group)


@router.put("/{group_id}/nodes", response_model=GroupPublic)
async def replace_members(
    group_id: str, body: GroupMembers, guard: GuardDep, service: ServiceDep
) -> GroupPublic:
    """New members: the timelines of nodes that join or leave follow at once."""
    with service.db.session() as session:
        group = _seen(guard, session, group_id)
        guard.check(Permission.schedule, [group.area_id])
        before = members(session, [group_id])[group_id]
        check_members(session, guard.tree, group.area_id, body.nodes)
        set_members(session, group, body.nodes)
        session.commit()
        out = public(session, group)
    guard.audit("group.members", group_id, body.model_dump(mode="json"))
    await service.timelines.refresh(before | set(body.nodes))
    return out


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(group_id: str, guard: GuardDep, session: SessionDep) -> None:
    group = _seen(guard, session, group_id)
    guard.check(Permission.schedule, [group.area_id])
    delete_group(session, group)
    session.commit()
    guard.audit("group.delete", group_id)
