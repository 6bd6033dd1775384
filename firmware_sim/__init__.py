"""Loudspeaker node software: simulated fleets in one process, or one real node on a Pi.

It imports nothing of the project except the `protocol` wire contract.
"""

from __future__ import annotations

from firmware_sim.config import BrokerEndpoint, NodeConfig, NodeConfigError, load_config
from firmware_sim.fleet import Fleet, FleetSummary, load_fleet
from firmware_sim.health import NodeHealth
from firmware_sim.node import Node
from firmware_sim.outbox import Outbox
from firmware_sim.playback import Playback, Played
from firmware_sim.timeline import LATE_TOLERANCE_MS, Timeline

__all__ = [
    "LATE_TOLERANCE_MS",
    "BrokerEndpoint",
    "Fleet",
    "FleetSummary",
    "Node",
    "NodeConfig",
    "NodeConfigError",
    "NodeHealth",
    "Outbox",
    "Playback",
    "Played",
    "Timeline",
    "load_config",
    "load_fleet",
]
