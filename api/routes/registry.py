"""The node registry in bulk: import a CSV of nodes; provision a node again; retire a node and
revoke its credentials."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status
from pydantic import BaseModel

from api.deps import GuardDep, ServiceDep
from api.schemas import NodeProvisioned, NodePublic
from controller.auth.access import Permission
from controller.commands.command_progress import abandon_for_node
from controller.core.config import ConfigError
from controller.core.errors import Conflict, Invalid, Misconfigured, NotFound
from controller.core.models import Node
from controller.fleet.node_import import NodeImportError, add_rows, checked_rows
from controller.service import RadioService

router = APIRouter(prefix="/nodes", tags=["nodes"])

MAX_CSV = 2 * 1024 * 1024


class NodeImportResult(BaseModel):
    imported: int
    nodes: list[NodeProvisioned]


@router.post("/import", response_model=NodeImportResult, status_code=status.HTTP_201_CREATED)
async def import_csv(
    guard: GuardDep,
    service: ServiceDep,
    file: Annotated[
        UploadFile,
        File(
            description="UTF-8 CSV with a header: id,name,area[,lat,lon,hardware,installed_on]; "
            "every row is checked first and nothing is imported if one is wrong"
        ),
    ],
) -> NodeImportResult:
    guard.check(Permission.manage_nodes)
    data = await file.read(MAX_CSV + 1)
    if len(data) > MAX_CSV:
        raise Invalid("the CSV file is larger than 2 MB: split it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"the CSV file is not UTF-8 (byte {exc.start}): save it as UTF-8") from None
    try:
        with service.db.session() as session:
            # What is wrong with the file first, then whether it is the user's to do.
            rows = checked_rows(session, text)
            guard.check(Permission.manage_nodes, sorted({r.area for r in rows}))
            added = add_rows(service.registry, session, rows)
            session.commit()
            result = [
                NodeProvisioned(
                    node=NodePublic.model_validate(node, from_attributes=True),
                    provisioning=prov,
                )
                for node, prov in added
            ]
    except NodeImportError as exc:
        raise Invalid(str(exc)) from None
    except ConfigError as exc:  # no address nodes can reach: nothing was imported
        raise Misconfigured(str(exc)) from None
    await asyncio.to_thread(_write_files, service, [r.provisioning for r in result])
    guard.audit(
        "node.import", f"{len(result)} nodes", {"nodes": [r.node.id for r in result][:1000]}
    )
    await service.nodes_changed()
    return NodeImportResult(imported=len(result), nodes=result)


@router.post("/{node_id}/provision", response_model=NodeProvisioned)
async def provision(node_id: str, guard: GuardDep, service: ServiceDep) -> NodeProvisioned:
    """A new provisioning file for a node whose file was lost (only a hash of its password is
    kept): a new broker password and media token; the old ones stop working at once. A retired
    node returns to service. The file is also written into the controller's data directory."""
    guard.check(Permission.manage_nodes)
    with service.db.session() as session:
        node = session.get(Node, node_id[:64])
        if node is None or not guard.sees(node.area_id):
            raise NotFound(f"node {node_id[:64]!r} does not exist")
        guard.check(Permission.manage_nodes, [node.area_id])
        was_retired = node.retired
        try:
            prov = service.registry.reprovision(session, node)
        except ConfigError as exc:
            raise Misconfigured(str(exc)) from None
        session.commit()
        public = NodePublic.model_validate(node, from_attributes=True)
    await asyncio.to_thread(service.registry.write_provisioning, prov)
    guard.audit("node.provision", public.id, {"was_retired": was_retired})
    await service.nodes_changed()
    return NodeProvisioned(node=public, provisioning=prov)


@router.post("/{node_id}/retire", response_model=NodePublic)
async def retire(node_id: str, guard: GuardDep, service: ServiceDep) -> NodePublic:
    """The node's broker login is removed from the password and ACL files at once (the embedded
    broker re-reads them, Mosquitto is told to reload); commands waiting on it fail."""
    guard.check(Permission.manage_nodes)
    with service.db.session() as session:
        node = session.get(Node, node_id[:64])
        if node is None or not guard.sees(node.area_id):
            raise NotFound(f"node {node_id[:64]!r} does not exist")
        guard.check(Permission.manage_nodes, [node.area_id])
        if node.retired:
            raise Conflict(f"node {node.id} is already retired")
        service.registry.retire_node(session, node.id)
        abandoned = abandon_for_node(session, node.id, "node retired", service.commands.now())
        session.commit()
        public = NodePublic.model_validate(node, from_attributes=True)
    guard.audit("node.retire", public.id, {"commands_abandoned": abandoned})
    await service.nodes_changed()
    return public


def _write_files(service: RadioService, provisioning: list[dict[str, Any]]) -> None:
    """Each imported node's file, kept in the data directory too (as a file provisioned again
    is): the file to copy onto the device."""
    for prov in provisioning:
        service.registry.write_provisioning(prov)
