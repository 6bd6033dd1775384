"""Nodes: the registry, with online state and last seen."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import ServiceDep, SessionDep
from api.schemas import NodeCreate, NodeProvisioned, NodePublic
from controller.errors import Invalid, NotFound
from controller.models import Node
from controller.registry import RegistryError

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("", response_model=list[NodePublic])
def list_nodes(
    session: SessionDep,
    area_id: str | None = None,
    status: str | None = None,
    include_retired: bool = False,
) -> list[Node]:
    query = select(Node).order_by(Node.id)
    if area_id is not None:
        query = query.where(Node.area_id == area_id)
    if status is not None:
        query = query.where(Node.status == status)
    if not include_retired:
        query = query.where(Node.retired == False)  # noqa: E712
    return list(session.exec(query).all())


@router.get("/{node_id}", response_model=NodePublic)
def get_node(node_id: str, session: SessionDep) -> Node:
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound(f"node {node_id!r} does not exist")
    return node


@router.post("", response_model=NodeProvisioned, status_code=status.HTTP_201_CREATED)
async def create_node(body: NodeCreate, service: ServiceDep) -> NodeProvisioned:
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
    await service.nodes_changed()
    return NodeProvisioned(node=public, provisioning=provisioning)
