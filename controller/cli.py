"""The `radio` command: serve, demo, sim, and administration of the registry and speech."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from controller.config import ConfigError, Settings

app = typer.Typer(help="Đài truyền thanh thông minh — smart commune radio", no_args_is_help=True)
node_app = typer.Typer(help="Loudspeaker nodes: register, provision, retire.", no_args_is_help=True)
area_app = typer.Typer(help="Areas of the administrative tree.", no_args_is_help=True)
speech_app = typer.Typer(help="Vietnamese speech: normalise and render.", no_args_is_help=True)
user_app = typer.Typer(help="People who use the console and the API.", no_args_is_help=True)
cap_app = typer.Typer(help="CAP 1.2 documents from warning agencies.", no_args_is_help=True)
app.add_typer(cap_app, name="cap")
app.add_typer(user_app, name="user")
app.add_typer(node_app, name="node")
app.add_typer(area_app, name="area")
app.add_typer(speech_app, name="speech")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except (ValidationError, ConfigError) as exc:
        typer.secho(f"Configuration error:\n{exc}", fg="red", err=True)
        raise typer.Exit(2) from None


async def serve_app(settings: Settings, clock: object = None, extra: list | None = None) -> None:
    """Run the HTTP server (and with it the controller) until cancelled."""
    import uvicorn

    from api.main import create_app

    application = create_app(settings, clock)  # type: ignore[arg-type]
    config = uvicorn.Config(
        application,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = uvicorn.Server(config)
    await server.serve()


@app.command()
def serve(log_level: str = "INFO") -> None:
    """Run the controller: API, web console, scheduler, MQTT gateway (and the embedded broker
    when RADIO_MQTT_URL is unset)."""
    setup_logging(log_level)
    settings = load_settings()
    asyncio.run(serve_app(settings))


@app.command()
def demo(
    lead_s: Annotated[float, typer.Option(help="Seconds until the announcement airs")] = 15,
    exit_when_done: Annotated[bool, typer.Option(help="Stop once every node has played")] = False,
    timeout_s: Annotated[float, typer.Option(help="Give up waiting after this long")] = 120,
    log_level: str = "WARNING",
) -> None:
    """Start everything on embedded defaults with a demo commune of 20 nodes in 3 villages,
    and schedule a Vietnamese announcement a short while ahead."""
    os.environ.setdefault("RADIO_DEMO", "1")
    setup_logging(log_level)
    settings = load_settings()
    from controller.demo_run import run_demo

    code = asyncio.run(run_demo(settings, lead_s, exit_when_done, timeout_s))
    raise typer.Exit(code)


@app.command()
def sim(
    nodes: Annotated[int, typer.Option(help="Register (if needed) and run this many nodes")] = 0,
    area: Annotated[str, typer.Option(help="Area of the nodes created by --nodes")] = "",
    provision_dir: Annotated[
        Path | None, typer.Option(help="Run the nodes whose provisioning files are here")
    ] = None,
    speed: Annotated[float, typer.Option(help="Clock speed-up factor (tests)")] = 1.0,
    log_level: str = "WARNING",
) -> None:
    """Run simulated loudspeaker nodes: each its own MQTT connection and credentials."""
    setup_logging(log_level)
    from firmware_sim.config import NodeConfig
    from firmware_sim.fleet import load_fleet

    configs: list[NodeConfig]
    if nodes > 0:
        settings = load_settings()
        if not area:
            typer.secho("--nodes needs --area (an existing area id)", fg="red", err=True)
            raise typer.Exit(2)
        from controller.simnodes import ensure_sim_nodes

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
    asyncio.run(_run_fleet(configs, speed))


async def _run_fleet(configs: list, speed: float) -> None:
    from firmware_sim.fleet import Fleet
    from protocol import ScaledClock, SystemClock

    clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
    await Fleet(configs, clock).run()


@area_app.command("add")
def area_add(
    area_id: str,
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="province, district, commune or village")],
    parent: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add an area to the tree."""
    from controller.models import AreaKind
    from controller.registry import RegistryError
    from controller.tools import open_registry

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


@node_app.command("add")
def node_add(
    node_id: str,
    name: Annotated[str, typer.Option()],
    area: Annotated[str, typer.Option()],
    lat: float | None = None,
    lon: float | None = None,
) -> None:
    """Register a node and write its provisioning file (broker login, keys, media token)."""
    from controller.registry import RegistryError
    from controller.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        with registry.db.session() as session:
            _, prov = registry.add_node(session, node_id, name, area, lat=lat, lon=lon)
            session.commit()
    except RegistryError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    path = registry.write_provisioning(prov)
    registry.write_broker_files()
    typer.echo(f"node {node_id} registered; provisioning file: {path}")


@node_app.command("retire")
def node_retire(node_id: str) -> None:
    """Retire a node and revoke its broker credentials."""
    from controller.registry import RegistryError
    from controller.tools import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    try:
        with registry.db.session() as session:
            registry.retire_node(session, node_id)
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
    from controller.audit import record
    from controller.models import Role
    from controller.tools import open_registry
    from controller.users import UserError, create_user

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
    """Validate CAP documents: print the alert each would raise, or why it is refused."""
    from sqlmodel import select

    from controller.cap_export import check_file, format_result
    from controller.models import Area, Node
    from controller.tools import open_registry

    os.environ.setdefault("RADIO_DEMO", "1")
    registry = open_registry(load_settings())
    with registry.db.session() as session:
        areas = {a.id: a.parent_id for a in session.exec(select(Area)).all()}
        nodes = [(n.id, n.area_id, n.lat, n.lon) for n in session.exec(select(Node)).all()]
    refused = 0
    for path in files:
        result = check_file(path, areas=areas, nodes=nodes)
        typer.echo(format_result(result))
        refused += not result.ok
    raise typer.Exit(1 if refused else 0)


@speech_app.command("normalize")
def speech_normalize() -> None:
    """Read lines of text on standard input; print each line's reading, one line per line."""
    from audio import normalize

    for line in sys.stdin:
        typer.echo(normalize(line.rstrip("\n")))


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
