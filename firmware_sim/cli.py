"""Command line: run a fleet of simulated nodes from a directory of provisioning files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_sim.config import ConfigError
from firmware_sim.fleet import Fleet, load_fleet
from protocol import Clock, ScaledClock, SystemClock


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim", description="Run simulated loudspeaker nodes."
    )
    parser.add_argument(
        "--provision-dir",
        type=Path,
        required=True,
        help="directory of node provisioning *.json files",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="clock speed-up (must match the controller's)"
    )
    parser.add_argument(
        "--origin-ms",
        type=int,
        default=None,
        help="epoch ms where a scaled clock starts (must match the controller's)",
    )
    parser.add_argument(
        "--clock-offset-ms", type=int, default=0, help="shift every node clock, to simulate drift"
    )
    parser.add_argument("--stagger-ms", type=float, default=5.0, help="delay between node connects")
    parser.add_argument("--log-level", default="INFO")
    return parser


def make_clock(speed: float, offset_ms: int, origin_ms: int | None) -> Clock:
    if speed == 1.0 and origin_ms is None:
        return SystemClock(offset_ms)
    return ScaledClock(speed, origin_ms=origin_ms, offset_ms=offset_ms)


def _raise_fd_limit() -> None:
    """Each node holds a socket; the usual soft limit of 1024 stops a large fleet."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    try:
        configs = load_fleet(args.provision_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    clock = make_clock(args.speed, args.clock_offset_ms, args.origin_ms)

    async def _run() -> None:
        await Fleet(configs, clock=clock, stagger_s=args.stagger_ms / 1000).run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run())
    return 0
