"""Command line: run a fleet of simulated nodes from a directory of provisioning files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_sim.config import NodeConfigError
from firmware_sim.fleet import Fleet, load_fleet
from firmware_sim.processes import parse_shard, run_processes, write_status
from firmware_sim.scenario import Scenario, ScenarioError
from protocol import Clock, ScaledClock, SystemClock
from protocol.aio import quiet_closed_socket_races
from protocol.heap import keep_heap_frozen, limit_arenas


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim", description="Run simulated loudspeaker nodes."
    )
    parser.add_argument(
        "--provision-dir", type=Path, help="directory of node provisioning *.json files"
    )
    single = parser.add_argument_group("single-node mode: a real loudspeaker (node-install.md)")
    single.add_argument("--single", action="store_true", help="run one real node")
    single.add_argument("--provision", type=Path, help="its provisioning file")
    single.add_argument(
        "--audio-device", help='sound card: "default", an ALSA name such as "hw:1,0", "null"'
    )
    single.add_argument("--audio-backend", choices=["alsa", "pulseaudio", "null"])
    single.add_argument(
        "--install-dir", type=Path, help="firmware releases: DIR/releases/<version>, DIR/current"
    )
    single.add_argument(
        "--restart-command", help='restarts the service, e.g. "systemctl --no-block restart …"'
    )
    single.add_argument(
        "--update-confirm-s",
        type=float,
        help="seconds a new release has to come online before it is rolled back (default 120)",
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
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep each node's media, events and trust (keys, replay journal) under DIR/<node>",
    )
    parser.add_argument(
        "--scenario", type=Path, default=None, help="TOML file of timed faults (scenario.py)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="split the fleet across N processes (about 2,500 nodes each keep time well)",
    )
    parser.add_argument("--shard", default=None, help="run only shard INDEX/COUNT of the files")
    parser.add_argument(
        "--status-file", type=Path, default=None, help="write this process's summary here"
    )
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


def _without(args: list[str], option: str) -> list[str]:
    """The arguments less `option` and its value (as `--opt V` or `--opt=V`)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(f"{option}="):
            out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    if args.single:
        return _single(args)
    if args.provision_dir is None:
        print("give --provision-dir (or --single --provision FILE)", file=sys.stderr)
        return 2
    if args.processes > 1:
        if args.processes > 64:
            print("--processes: at most 64", file=sys.stderr)
            return 2
        child = _without(list(argv if argv is not None else sys.argv[1:]), "--processes")
        return run_processes(args.processes, child)
    try:
        configs = load_fleet(args.provision_dir)
        if args.shard is not None:
            index, count = parse_shard(args.shard)
            configs = configs[index::count]
        if args.cache_dir is not None:  # a provisioning file's own cache_dir wins
            cache = str(args.cache_dir)
            configs = [
                c if c.cache_dir else c.model_copy(update={"cache_dir": cache}) for c in configs
            ]
        scenario = Scenario.load(args.scenario) if args.scenario else None
        if scenario is not None:
            scenario.check([c.node_id for c in configs])
    except (NodeConfigError, ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    limit_arenas()  # before any thread starts
    clock = make_clock(args.speed, args.clock_offset_ms, args.origin_ms)

    async def _run() -> None:
        quiet_closed_socket_races()
        fleet = Fleet(configs, clock=clock, stagger_s=args.stagger_ms / 1000)
        jobs = [fleet.run(), keep_heap_frozen()]
        if args.status_file is not None:
            jobs.append(write_status(fleet, args.status_file))
        if scenario is not None:
            jobs.append(scenario.run(fleet.nodes, clock))
        await asyncio.gather(*jobs)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run())
    return 0


def _single(args: argparse.Namespace) -> int:
    from firmware_sim.single import run_single, single_config

    if args.provision is None:
        print("--single needs --provision FILE", file=sys.stderr)
        return 2
    try:
        config = single_config(
            args.provision,
            args.cache_dir,
            args.audio_device,
            args.audio_backend,
            install_dir=args.install_dir,
            restart_command=args.restart_command,
            update_confirm_s=args.update_confirm_s,
        )
    except NodeConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_single(config, make_clock(args.speed, args.clock_offset_ms, args.origin_ms))
