"""Simulated nodes registered in bulk for `radio sim --nodes N`."""

from __future__ import annotations

from typing import Any

from controller.core.config import Settings
from controller.core.models import Area, Node
from radio.tools import open_registry


def ensure_sim_nodes(settings: Settings, count: int, area_id: str) -> list[dict[str, Any]]:
    """Nodes `sim-<area>-00001`…; existing ones get a fresh password (only hashes are kept)."""
    registry = open_registry(settings)
    provs: list[dict[str, Any]] = []
    with registry.db.session() as session:
        if session.get(Area, area_id) is None:
            raise ValueError(f"area {area_id!r} does not exist: create it with `radio area add`")
        for i in range(1, count + 1):
            node_id = f"sim-{area_id}-{i:05d}"[:64]
            node = session.get(Node, node_id)
            if node is None:
                _, prov = registry.add_node(session, node_id, f"Sim {i}", area_id, hardware="sim")
            else:
                prov = registry.reprovision(session, node)
            provs.append(prov)
        session.commit()
    registry.write_broker_files()
    return provs
