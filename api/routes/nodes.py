"""Nodes: the registry, with online state and last seen."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.schemas import NodeCreate, NodeProvisioned, NodePublic
from controller.access import Permission
from controller.errors import Invalid, NotFound
from controller.models import Node
from controller.registry import RegistryError

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("", response_model=list[NodePublic])
def list_nodes(
    guard: GuardDep,
    session: SessionDep,
    area_id: str | None = None,
    status: str | None = None,
    include_retired: bool = False,
) -> list[Node]:
    guard.check(Permission.read)
    query = select(Node).order_by(Node.id)
    if area_id is not None:
        areas = guard.tree.descendants(area_id)
        query = query.where(Node.area_id.in_(areas))  # type: ignore[attr-defined]
    if status is not None:
        query = query.where(Node.status == status)
    if not include_retired:
        query = query.where(Node.retired == False)  # noqa: E712
    return [n for n in session.exec(query).all() if guard.sees(n.area_id)]


@router.get("/{node_id}", response_model=NodePublic)
def get_node(node_id: str, guard: GuardDep, session: SessionDep) -> Node:
    guard.check(Permission.read)
    node = session.get(Node, node_id)
    if node is None or not guard.sees(node.area_id):
        raise NotFound(f"node {node_id!r} does not exist")
    return node


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
        session.commit()
        public = NodePublic.model_validate(node, from_attributes=True)
    guard.audit("node.create", body.id, body.model_dump(mode="json"))
    await service.nodes_changed()
    return NodeProvisioned(node=public, provisioning=provisioning)
