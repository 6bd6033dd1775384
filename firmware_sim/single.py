"""Single-node mode: one real loudspeaker on a small Linux computer (a Raspberry Pi and an
amplifier), run by systemd. The same `Node` as the simulator, with the sound card player.

It reads its provisioning file, keeps its timeline, media, events and trust in `--cache-dir`
(so a reboot without network still plays the day's programme), and stops cleanly on SIGTERM:
it tells the broker it is going offline, as `systemctl stop` expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from firmware_sim.config import NodeConfig, NodeConfigError, load_config
from firmware_sim.node import Node
from firmware_sim.player_choice import make_player
from firmware_sim.trust import summarise
from protocol import Clock

log = logging.getLogger(__name__)


def single_config(
    provision: Path,
    cache_dir: Path | None,
    device: str | None,
    backend: str | None,
    install_dir: Path | None = None,
    restart_command: str | None = None,
    update_confirm_s: float | None = None,
) -> NodeConfig:
    """The provisioning file with the command line's choices over it; NodeConfigError says why a
    real node cannot run with it."""
    config = load_config(provision)
    updates: dict[str, object] = {}
    if install_dir is not None:
        updates["install_dir"] = str(install_dir)
    if restart_command is not None:
        updates["restart_command"] = restart_command
    if update_confirm_s is not None:
        updates["update_confirm_s"] = update_confirm_s
    if cache_dir is not None:
        updates["cache_dir"] = str(cache_dir)
    if device is not None:
        updates["audio_device"] = device
    if backend is not None:
        updates["audio_backend"] = backend
    config = config.model_copy(update=updates)
    if not config.cache_dir:
        raise NodeConfigError(
            f"{provision}: a real node keeps its timeline and media on disk: give --cache-dir "
            "(or cache_dir in the provisioning file)"
        )
    if config.install_dir and not config.restart_command:
        raise NodeConfigError(
            f"{provision}: firmware releases under {config.install_dir} need --restart-command "
            "(how the service is restarted into a new release)"
        )
    if not config.audio_device:
        config = config.model_copy(update={"audio_device": "default"})
    if config.health is None:
        config = config.model_copy(update={"health": "machine"})  # never the simulator's
    try:
        return NodeConfig.model_validate(config.model_dump())
    except ValidationError as exc:  # a value the command line gave (update_confirm_s)
        raise NodeConfigError(f"{provision}: {summarise(exc)}") from None


def run_single(config: NodeConfig, clock: Clock) -> int:
    try:
        make_player(config).close()  # a missing card is reported now, not at the first item
    except Exception as exc:
        print(f"error: the sound card cannot be used: {exc}", file=sys.stderr)
        return 2
    log.info(
        "node %s: playing through %s (%s), cache %s",
        config.node_id,
        config.audio_device,
        config.audio_backend,
        config.cache_dir,
    )

    async def _run() -> None:
        task = asyncio.create_task(Node(config, clock).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(_run())
    return 0
