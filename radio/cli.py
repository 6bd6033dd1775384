"""The `radio` command: serve, demo, sim, and administration of the registry and speech."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from controller.core.config import Settings
from controller.core.logs import setup_logging
from controller.core.private_files import UMASK
from protocol.aio import quiet_closed_socket_races
from protocol.heap import keep_heap_frozen, limit_arenas
from radio import conformance_cli, live_cli
from radio.cli_fleet import firmware_app, node_import, node_list
from radio.db_cli import db_app
from radio.keys_cli import keys_app
from radio.service_accounts_cli import service_accounts_app
from radio.tools import load_settings

if TYPE_CHECKING:
    from firmware_sim.config import NodeConfig
    from firmware_sim.scenario import Scenario
    from protocol.clock import Clock

app = typer.Typer(help="Đài truyền thanh thông minh — smart commune radio", no_args_is_help=True)
node_app = typer.Typer(help="Loudspeaker nodes: register, provision, retire.", no_args_is_help=True)
area_app = typer.Typer(help="Areas of the administrative tree.", no_args_is_help=True)
speech_app = typer.Typer(help="Vietnamese speech: normalise and render.", no_args_is_help=True)
user_app = typer.Typer(help="People who use the console and the API.", no_args_is_help=True)
cap_app = typer.Typer(help="CAP 1.2 documents from warning agencies.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cap_app, name="cap")
app.add_typer(user_app, name="user")
app.add_typer(node_app, name="node")
app.add_typer(area_app, name="area")
app.add_typer(speech_app, name="speech")
app.add_typer(keys_app, name="keys")
app.add_typer(firmware_app, name="firmware")
app.add_typer(service_accounts_app, name="service-accounts")
node_app.command("import")(node_import)
app.command("live")(live_cli.live)
app.command("conformance")(conformance_cli.conformance)
node_app.command("list")(node_list)
# The controller's threads (the API's synchronous routes, ingestion's writer, the alarm pass over
# every node) take turns at the interpreter's lock. A thread that wants it waits until the holder
# lets go, by default after 5 ms; a request crosses the lock at every database round trip, and
# with a province's alarm pass running beside it, the node list's slowest answers took 57-165 ms
# at 10,000 nodes where most took 18-34 ms (docs/benchmarks.md, "Province scale").
SWITCH_INTERVAL_S = 0.001


async def serve_app(
    settings: Settings, clock: Clock | None = None, extra: list[object] | None = None
) -> None:
    """Run the HTTP server (and with it the controller) until cancelled."""
    import uvicorn

    from api.main import create_app, server_config
    from controller.service import RadioService

    application = create_app(RadioService(settings, clock))
    config = server_config(
        application,
        settings,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = uvicorn.Server(config)
    quiet_closed_socket_races()
    keeper = asyncio.create_task(keep_heap_frozen(), name="heap")
    try:
        await server.serve()
    finally:
        keeper.cancel()


@app.command()
def serve(log_level: str = "INFO") -> None:
    """Run the controller: API, web console, scheduler, MQTT gateway (and the embedded broker
    when RADIO_MQTT_URL is unset)."""
    setup_logging(log_level)
    os.umask(UMASK)  # everything the service writes (data directory, logs) is its own
    settings = load_settings()
    if settings.log_format == "json":
        from controller.core.logs import use_json_logs

        use_json_logs(settings.instance)
    schema_must_be_current(settings)
    broker_port_must_be_free(settings)
    limit_arenas()  # before any thread starts
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    asyncio.run(serve_app(settings))


def broker_port_must_be_free(settings: Settings) -> None:
    """Refuse to serve, in one line, when the embedded broker's port is taken."""
    from controller.mqtt.broker_process import port_free

    host, port = settings.mqtt_embedded_host, settings.mqtt_embedded_port
    if not settings.mqtt_url and not port_free(host, port):
        typer.secho(
            f"radio serve: {host}:{port}, the embedded broker's port, is in use by another "
            "program: stop it, or choose another port (RADIO_MQTT_EMBEDDED_PORT)",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)


def schema_must_be_current(settings: Settings) -> None:
    """Refuse to serve on a database `radio db upgrade` has not brought up to date."""
    from sqlalchemy.exc import SQLAlchemyError

    from controller.core.db import Database, SchemaNotCurrent
    from controller.core.private_files import secure_data_dir
    from radio.db_cli import unreachable

    secure_data_dir(settings.data_dir)
    db = Database(settings.db_url)
    try:
        db.check_current()
    except SchemaNotCurrent as exc:
        typer.secho(f"radio serve: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.secho(f"radio serve: {unreachable(db, exc)}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@app.command()
def demo(
    lead_s: Annotated[float, typer.Option(help="Seconds until the announcement airs")] = 15,
    exit_when_done: Annotated[bool, typer.Option(help="Stop once every node has played")] = False,
    timeout_s: Annotated[float, typer.Option(help="Give up waiting after this long")] = 120,
    scenario: Annotated[
        Path | None, typer.Option(help="TOML file of timed faults for the demo nodes")
    ] = None,
    log_level: str = "WARNING",
) -> None:
    """Start everything on embedded defaults with a demo commune of 20 nodes in 3 villages,
    and schedule a Vietnamese announcement a short while ahead."""
    os.environ.setdefault("RADIO_DEMO", "1")
    # Nodes on this machine: a heartbeat every 30 s shows their health at once (the default
    # of 10 minutes saves mobile data, which the demo does not spend).
    os.environ.setdefault("RADIO_HEARTBEAT_S", "30")
    setup_logging(log_level)
    settings = load_settings()
    from firmware_sim.scenario import Scenario, ScenarioError
    from radio.demo_run import run_demo

    try:
        faults = Scenario.load(scenario) if scenario else None
    except ScenarioError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None

    async def run_then_end() -> None:
        try:
            code = await run_demo(settings, lead_s, exit_when_done, timeout_s, faults)
        except asyncio.CancelledError:  # Ctrl-C, as asyncio.run passes it on
            code = 130
        # Everything has stopped, or been waited for a bounded time: the end comes here, in
        # the loop, and not after asyncio.run has waited without bound for what is left.
        end_process(code)

    try:
        asyncio.run(run_then_end())
    except KeyboardInterrupt:  # Ctrl-C before the loop ran
        end_process(130)


def end_process(code: int) -> NoReturn:
    """End the process once everything has stopped: flush the logs and the output, and skip
    the interpreter's own teardown. That teardown collects every object once more (300,000
    in the demo) and runs what the objects leave behind, and took 1.4 to 8 seconds after
    Ctrl-C on a loaded machine. By then the server (and with it the broker, which ends with
    its pipe, and the database) and the nodes have stopped, or have been waited for a bounded
    time and said so; a thread still reading the database for the progress line has nothing
    to keep."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@app.command()
def sim(
    nodes: Annotated[int, typer.Option(help="Register (if needed) and run this many nodes")] = 0,
    area: Annotated[str, typer.Option(help="Area of the nodes created by --nodes")] = "",
    provision_dir: Annotated[
        Path | None, typer.Option(help="Run the nodes whose provisioning files are here")
    ] = None,
    speed: Annotated[float, typer.Option(help="Clock speed-up factor (tests)")] = 1.0,
    scenario: Annotated[
        Path | None, typer.Option(help="TOML file of timed faults (offline, flap, speaker …)")
    ] = None,
    processes: Annotated[
        int, typer.Option(help="Split the nodes across N processes (10,000 nodes: 4)")
    ] = 1,
    log_level: str = "WARNING",
) -> None:
    """Run simulated loudspeaker nodes: each its own MQTT connection and credentials."""
    setup_logging(log_level)
    from firmware_sim.config import NodeConfig
    from firmware_sim.fleet import load_fleet
    from firmware_sim.scenario import Scenario, ScenarioError

    configs: list[NodeConfig]
    if nodes > 0:
        settings = load_settings()
        if not area:
            typer.secho("--nodes needs --area (an existing area id)", fg="red", err=True)
            raise typer.Exit(2)
        from radio.simnodes import ensure_sim_nodes

        try:
            provs = ensure_sim_nodes(settings, nodes, area)
        except ValueError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from None
        configs = [NodeConfig.model_validate(p) for p in provs]
    elif provision_dir is not None:
        configs = load_fleet(provision_dir)
    else:
        typer.secho("give --nodes N --area AREA, or --provision-dir DIR", fg="red", err=True)
        raise typer.Exit(2)
    try:
        faults = Scenario.load(scenario) if scenario else None
        if faults is not None:
            faults.check([c.node_id for c in configs])
    except ScenarioError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    if processes > 1:
        raise typer.Exit(_run_processes(configs, processes, speed, scenario, log_level))
    asyncio.run(_run_fleet(configs, speed, faults))


def _run_processes(
    configs: list[NodeConfig], processes: int, speed: float, scenario: Path | None, log_level: str
) -> int:
    """The fleet as `python -m firmware_sim --processes N` over a directory of its files."""
    import json
    import tempfile

    from firmware_sim.cli import main as fleet_main

    folder = Path(tempfile.mkdtemp(prefix="radio-sim-"))
    for c in configs:
        (folder / f"{c.node_id}.json").write_text(json.dumps(c.model_dump(mode="json")))
    args = ["--provision-dir", str(folder), "--processes", str(processes)]
    args += ["--speed", str(speed), "--log-level", log_level]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    return fleet_main(args)


async def _run_fleet(
    configs: list[NodeConfig], speed: float, scenario: Scenario | None = None
) -> None:
    from firmware_sim.fleet import Fleet
    from protocol import ScaledClock, SystemClock

    clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
    fleet = Fleet(configs, clock)
    jobs = [fleet.run()]
    if scenario is not None:
        jobs.append(scenario.run(fleet.nodes, clock))
    await asyncio.gather(*jobs)


@area_app.command("add")
def area_add(
    area_id: str,
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="province, district, commune or village")],
    parent: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add an area to the tree."""
    from controller.core.models import AreaKind
    from controller.fleet.registry import RegistryError
    from radio.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        with registry.db.session() as session:
            registry.add_area(session, area_id, name, AreaKind(kind), parent)
            session.commit()
    except (RegistryError, ValueError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"area {area_id} added")


@area_app.command("seed-vietnam")
def area_seed_vietnam(
    province: Annotated[
        list[int] | None, typer.Option(help="Only this province code (repeatable), e.g. 1")
    ] = None,
) -> None:
    """Add Viet Nam's 34 provinces and 3,321 communes (or some provinces') to the tree."""
    from controller.fleet.seed import seed_areas, vietnam_units
    from radio.tools import open_registry

    try:
        units = vietnam_units(set(province) if province else None)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    registry = open_registry(load_settings())
    with registry.db.session() as session:
        added, kept = seed_areas(session, units)
        session.commit()
    typer.echo(f"{added} area(s) added, {kept} already present")


@node_app.command("add")
def node_add(
    node_id: str,
    name: Annotated[str, typer.Option()],
    area: Annotated[str, typer.Option()],
    lat: float | None = None,
    lon: float | None = None,
    hardware: Annotated[str, typer.Option(help="e.g. the loudspeaker controller model")] = "",
    installed_on: Annotated[
        str | None, typer.Option(help="Install date: 2025-03-14 or 14/03/2025")
    ] = None,
) -> None:
    """Register a node and write its provisioning file (broker login, keys, media token)."""
    from controller.fleet.node_import import parse_date
    from controller.fleet.registry import RegistryError
    from radio.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        installed = parse_date(installed_on) if installed_on else None
        if (lat is None) != (lon is None) or abs(lat or 0) > 90 or abs(lon or 0) > 180:
            raise RegistryError("give both --lat (-90…90) and --lon (-180…180), or neither")
        with registry.db.session() as session:
            _, prov = registry.add_node(
                session,
                node_id,
                name,
                area,
                lat=lat,
                lon=lon,
                hardware=hardware[:100],
                installed_on=installed,
            )
            session.commit()
    except (RegistryError, ValueError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    path = registry.write_provisioning(prov)
    registry.write_broker_files()
    typer.echo(f"node {node_id} registered; provisioning file: {path}")


@node_app.command("provision")
def node_provision(
    node_id: str,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the file here (0600); '-' prints it instead"),
    ] = None,
) -> None:
    """Issue a node a new provisioning file (a lost one cannot be recovered): a new broker
    password and media token; the old ones stop working. A retired node returns to service."""
    from controller.auth.audit import record
    from controller.core.models import Node
    from controller.fleet.registry import RegistryError
    from radio.tools import open_registry

    registry = open_registry(load_settings())
    try:
        with registry.db.session() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise RegistryError(f"node {node_id} does not exist")
            was_retired = node.retired
            prov = registry.reprovision(session, node)
            record(session, "cli", "node.provision", node_id, {"was_retired": was_retired})
    except (RegistryError, ValueError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    path = registry.write_provisioning(prov)
    registry.write_broker_files()
    text = json.dumps(prov, indent=2, ensure_ascii=False)
    if out is not None and str(out) == "-":
        typer.echo(text)
        return
    if out is not None:
        try:
            fd = os.open(out, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            out.chmod(0o600)
        except OSError as exc:
            typer.secho(
                f"{out}: cannot write it ({exc.strerror}); the new file is at {path}",
                fg="red",
                err=True,
            )
            raise typer.Exit(1) from None
    back = " and returned to service" if was_retired else ""
    where = f"{path}" + (f" and {out}" if out is not None else "")
    typer.echo(f"node {node_id} provisioned again{back}; old credentials revoked; file: {where}")


@node_app.command("retire")
def node_retire(node_id: str) -> None:
    """Retire a node and revoke its broker credentials."""
    from controller.commands.command_progress import abandon_for_node
    from controller.core.models import Node, utcnow
    from controller.fleet.registry import RegistryError
    from radio.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        with registry.db.session() as session:
            node = session.get(Node, node_id)
            if node is not None and node.retired:
                raise RegistryError(f"node {node_id} is already retired")
            registry.retire_node(session, node_id)
            abandon_for_node(session, node_id, "node retired", utcnow())
            session.commit()
    except RegistryError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    registry.write_broker_files()
    typer.echo(f"node {node_id} retired; its broker login no longer works")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, officer, commune_staff, technician, auditor")],
    area: Annotated[str | None, typer.Option(help="The area the person works in")] = None,
    full_name: Annotated[str, typer.Option()] = "",
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="RADIO_NEW_USER_PASSWORD"
        ),
    ] = "",
) -> None:
    """Add a user (the first administrator, for instance)."""
    from controller.auth.audit import record
    from controller.auth.users import UserError, create_user
    from controller.core.models import Role
    from radio.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        with registry.db.session() as session:
            create_user(session, username, password, Role(role), area, full_name)
            record(session, "cli", "user.create", username, {"role": role, "area_id": area})
    except (UserError, ValueError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"user {username} ({role}) added")


@cap_app.command("check")
def cap_check(files: list[Path]) -> None:
    """Validate CAP documents: print the alert each would raise, or why it is refused (an
    expired one: what it would have raised, and why it is refused now). Writes nothing."""
    from radio.cap_cli import check

    raise typer.Exit(check(files))


@speech_app.command("normalize")
def speech_normalize() -> None:
    """Read lines of text on standard input; print each line's reading, one line per line."""
    from audio import normalize

    for line in sys.stdin:
        typer.echo(normalize(line.rstrip("\n")))


@speech_app.command("voices")
def speech_voices(
    text: Annotated[str, typer.Option(help="What each voice says")] = "Xin chào bà con.",
) -> None:
    """List the configured engines and voices and check that each one speaks (ok/failed)."""
    import tempfile
    import wave

    from audio import get_engine

    os.environ.setdefault("RADIO_DEMO", "1")
    settings = load_settings()
    names = [settings.tts_engine]
    if settings.tts_fallback_engine and settings.tts_fallback_engine not in names:
        names.append(settings.tts_fallback_engine)
    if settings.tts_piper_model and "piper" not in names:
        names.append("piper")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(names):
            role = "engine" if index == 0 else "configured"
            if index > 0 and name == settings.tts_fallback_engine:
                role = "fallback"
            options: dict[str, object] = {"voice": settings.tts_voice}
            if name == "piper" and settings.tts_piper_model:
                options["model_path"] = settings.tts_piper_model
            started = time.perf_counter()
            try:
                engine = get_engine(name, **options)
                wav = Path(tmp) / f"{name}.wav"
                engine.synthesize(text, wav)
                with wave.open(str(wav), "rb") as handle:
                    seconds = handle.getnframes() / handle.getframerate()
                if seconds < 0.2:
                    raise ValueError(f"only {seconds:.2f} s of audio")
            except Exception as exc:  # every reason a voice cannot speak is reported
                failed += 1
                label = f"{name} ({role})"
                typer.echo(f"{label:<22} {options['voice']!s:<24} failed: {exc}")
                continue
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            label = f"{name} ({role})"
            typer.echo(
                f"{label:<22} {engine.voice:<24} ok: {seconds:.1f} s of speech in {elapsed_ms} ms"
            )
    raise typer.Exit(1 if failed else 0)


@speech_app.command("render")
def speech_render(
    text: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="MP3 file to write")],
) -> None:
    """Render one announcement with the configured engine and mastering."""
    import shutil
    import tempfile

    from audio import AudioError, MediaStore, Renderer, RenderSettings

    os.environ.setdefault("RADIO_DEMO", "1")
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        renderer = Renderer(
            MediaStore(Path(tmp)),
            RenderSettings(engine=settings.tts_engine, voice=settings.tts_voice),
        )
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            # Long announcements render sentence by sentence; say how far it is, on stderr.
            if total > 1:
                typer.echo(f"  sentence {done}/{total}", err=True)

        try:
            result = renderer.render_text(text, progress=progress)
        except AudioError as exc:
            typer.secho(f"cannot render: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        src = renderer.store.path_for(result.sha256)
        assert src is not None
        shutil.copyfile(src, output)
    typer.echo(
        json.dumps(
            {
                "file": str(output),
                "engine": result.engine,
                "voice": result.voice,
                "duration_s": round(result.duration_s, 2),
                "loudness_lufs": round(result.integrated_lufs, 1),
                "true_peak_dbtp": round(result.true_peak_dbtp, 1),
                "render_ms": round((time.perf_counter() - started) * 1000),
                "normalized_text": result.normalized_text,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    app()
