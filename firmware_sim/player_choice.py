"""Which player a node plays through: its sound card when its configuration names one, else the
simulated player (a module of its own, so that the player's types and the sound card, which
implements them, import in one direction)."""

from __future__ import annotations

from firmware_sim.config import NodeConfig
from firmware_sim.player import Player, SimulatedPlayer


def make_player(config: NodeConfig) -> Player:
    """The sound card named by `audio_device` (e.g. "default", "hw:1,0", "null"), or the
    simulated player when there is none."""
    if not config.audio_device:
        return SimulatedPlayer()
    from firmware_sim.sound_card import SoundCardPlayer  # needs miniaudio; simulators do not

    return SoundCardPlayer(config.audio_device, config.audio_backend)
