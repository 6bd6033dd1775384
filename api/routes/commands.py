"""Commands to nodes: give one to nodes or whole areas, then follow every node's answer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import ID_PATTERN, Strict
from controller.auth.access import Permission
from controller.commands import command_progress as progress
from controller.core.errors import NotFound
from controller.core.models import Command, Node, NodeCommand
from protocol import CommandName

router = APIRouter(prefix="/commands", tags=["commands"])

IdStr = Annotated[str, Field(pattern=ID_PATTERN)]


class CommandIn(Strict):
    command: CommandName
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="volume: {level: 0-100}; test_tone: {duration_ms}; update_firmware: "
        "{version}; stop, resync, reboot: none",
    )
    nodes: list[IdStr] = Field(default_factory=list, max_length=5000)
    areas: list[IdStr] = Field(
        default_factory=list, max_length=500, description="Every active node of these areas"
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=24 * 3600,
        description="How long to wait for each node's answer; default 30 s, 900 s for firmware",
    )
    offline: Literal["skip", "send"] = Field(
        default="skip",
        description="skip: nodes offline now are not sent the command (state 'skipped'); "
        "send: they are, and time out unless they answer",
    )


class CommandPublic(BaseModel):
    id: str
    command: str
    args: dict[str, Any]
    targets: dict[str, list[str]]
    nodes: int
    timeout_s: float
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    done: bool
    counts: dict[str, int]


class NodeCommandPublic(BaseModel):
    node_id: str
    area_id: str
    state: str
    stage: str
    stages: list[str]
    detail: str
    firmware: str | None
    sent_at: datetime | None
    acked_at: datetime | None
    finished_at: datetime | None


class CommandView(BaseModel):
    command: CommandPublic
    versions: dict[str, int] = Field(description="Nodes by the firmware their answers reported")
    nodes: list[NodeCommandPublic]


def visible(guard: GuardDep, command: Command) -> bool:
    return any(guard.sees(a) for a in json.loads(command.areas))


@router.post("", response_model=CommandPublic, status_code=status.HTTP_202_ACCEPTED)
async def give(body: CommandIn, guard: GuardDep, service: ServiceDep) -> CommandPublic:
    """Recorded and answered at once; nodes answer over the next seconds: follow them with
    GET /commands/{id}."""
    guard.check(Permission.command)
    with service.db.session() as session:
        plan = service.commands.plan(
            session,
            body.command,
            args=body.args,
            nodes=body.nodes,
            areas=body.areas,
            timeout_s=body.timeout_s,
            offline=body.offline,
        )
    guard.check(Permission.command, plan.areas)
    command = await service.commands.issue(plan, guard.user.username)
    guard.audit(
        f"command.{command.name}",
        command.id,
        {**body.model_dump(mode="json"), "node_count": command.nodes},
    )
    with service.db.session() as session:
        counts = progress.counts_of(session, [command.id])[command.id]
    return CommandPublic(**progress.summary(command, counts))


@router.get("", response_model=list[CommandPublic])
def list_commands(
    guard: GuardDep,
    session: SessionDep,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    command: CommandName | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[CommandPublic]:
    guard.check(Permission.read)
    query = select(Command).order_by(col(Command.created_at).desc())
    if node_id is not None:
        node = session.get(Node, node_id)
        if node is None or not guard.sees(node.area_id):
            raise NotFound(f"node {node_id!r} does not exist")
        ids = select(NodeCommand.command_id).where(NodeCommand.node_id == node_id)
        query = query.where(col(Command.id).in_(ids))
    if command is not None:
        query = query.where(Command.name == command.value)
    # Scope is judged per command; read a few more than asked so outsiders' do not crowd out.
    rows = [c for c in session.exec(query.limit(limit * 4)).all() if visible(guard, c)][:limit]
    counts = progress.counts_of(session, [c.id for c in rows])
    return [CommandPublic(**progress.summary(c, counts[c.id])) for c in rows]


@router.get("/{command_id}", response_model=CommandView)
def view(command_id: str, guard: GuardDep, session: SessionDep) -> CommandView:
    """Progress: counts by state, each node's state, stages reported and answer."""
    guard.check(Permission.read)
    command = session.get(Command, command_id[:32])
    if command is None or not visible(guard, command):
        raise NotFound(f"command {command_id[:40]} does not exist")
    rows = progress.node_rows(session, command, guard.sees)
    counts: dict[str, int] = {}
    versions: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        if row["firmware"]:
            versions[row["firmware"]] = versions.get(row["firmware"], 0) + 1
    return CommandView(
        command=CommandPublic(**progress.summary(command, counts)),
        versions=versions,
        nodes=[NodeCommandPublic(**r) for r in rows],
    )
