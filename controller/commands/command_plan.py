"""A command checked before anything is recorded or sent: its arguments, the active nodes it
reaches (named, or under the areas named), the firmware image it points to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import Session

from controller.commands.command_args import check_args
from controller.commands.firmware import FirmwareCatalogue
from controller.core.config import Settings
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import Area, Node
from controller.fleet.registry import Registry
from protocol import CommandName

Offline = Literal["skip", "send"]


@dataclass
class CommandPlan:
    """A command resolved to its nodes, with the arguments as the nodes will get them."""

    name: CommandName
    args: dict[str, Any]
    nodes: list[Node]
    targets: dict[str, list[str]]
    timeout_s: float
    offline: Offline
    wire_args: dict[str, Any] = field(default_factory=dict)

    @property
    def areas(self) -> list[str]:
        """Every area the command reaches: for the permission check and for who may see it."""
        return sorted({n.area_id for n in self.nodes} | set(self.targets["areas"]))

    def check_reachable(self) -> None:
        """With offline=skip, a command no target can hear is refused rather than recorded."""
        if self.offline == "skip" and not any(n.status == "online" for n in self.nodes):
            states = ", ".join(f"{n.id}: {n.status}" for n in self.nodes[:10])
            raise Conflict(
                f"every target node is offline ({states}): nothing would hear the command; "
                "send it with offline=send to try anyway",
                code="targets_offline",
            )


def plan_command(
    session: Session,
    registry: Registry,
    firmware: FirmwareCatalogue,
    settings: Settings,
    name: CommandName,
    args: dict[str, Any],
    nodes: list[str],
    areas: list[str],
    timeout_s: float | None = None,
    offline: Offline = "skip",
) -> CommandPlan:
    checked = check_args(name, args)
    targets = {"nodes": list(dict.fromkeys(nodes)), "areas": list(dict.fromkeys(areas))}
    chosen = _targets(session, registry, targets["nodes"], targets["areas"])
    wire = checked
    default = settings.command_timeout_s
    if name == CommandName.update_firmware:
        image = firmware.get(session, checked["version"])
        others = [n for n in chosen if image.hardware and n.hardware != image.hardware]
        if others:
            listed = ", ".join(f"{n.id} ({n.hardware or 'unknown'})" for n in others[:20])
            raise Invalid(
                f"firmware {image.version} is for hardware {image.hardware}; these nodes "
                f"have other hardware: {listed}"
            )
        wire = firmware.update_args(image)
        default = settings.firmware_timeout_s
    return CommandPlan(name, checked, chosen, targets, timeout_s or default, offline, wire)


def _targets(
    session: Session, registry: Registry, node_ids: list[str], area_ids: list[str]
) -> list[Node]:
    if not node_ids and not area_ids:
        raise Invalid("name the nodes, or the areas whose nodes get the command")
    chosen: dict[str, Node] = {}
    for node_id in node_ids:
        node = session.get(Node, node_id)
        if node is None:
            raise NotFound(f"node {node_id!r} does not exist")
        if node.retired:
            raise Invalid(f"node {node_id} is retired: commands go only to active nodes")
        chosen[node.id] = node
    for area_id in area_ids:
        if session.get(Area, area_id) is None:
            raise NotFound(f"area {area_id!r} does not exist")
        under = registry.nodes_under(session, {area_id})
        if not under:
            raise Invalid(f"area {area_id} has no active nodes")
        chosen.update((n.id, n) for n in under)
    return sorted(chosen.values(), key=lambda n: n.id)
