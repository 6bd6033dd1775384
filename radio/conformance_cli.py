"""`radio conformance`: grade a node, ours or a manufacturer's, against the wire contract."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from conformance import CHECKS, CommandNode, KitSettings, run_conformance
from conformance.run import select


def conformance(
    node_command: Annotated[
        str,
        typer.Option(
            help="How to start the node: a command with {provision} (the provisioning file the "
            "kit writes) and {cache_dir}; the kit stops it with SIGTERM and starts it again",
        ),
    ],
    broker: Annotated[str, typer.Option(help="The broker the kit uses, mqtt://host:port")] = (
        "mqtt://127.0.0.1:1883"
    ),
    node_broker: Annotated[
        str | None, typer.Option(help="The broker address given to the node (default: --broker)")
    ] = None,
    node_id: Annotated[str, typer.Option(help="The node's id in the provisioning file")] = (
        "conf-node"
    ),
    work_dir: Annotated[
        Path, typer.Option(help="Where the provisioning file, the node's cache and log go")
    ] = Path("conformance-run"),
    check: Annotated[
        list[str] | None, typer.Option(help="Run only this check (repeatable); default all")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the machine-readable result here")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each piece of evidence")] = 20,
    media_host: Annotated[
        str, typer.Option(help="The address the node reaches the kit's media server at")
    ] = "127.0.0.1",
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit")] = False,
) -> None:
    """Drive a node through the broker as the controller would, and grade what it does."""
    if list_checks:
        for c in CHECKS:
            typer.echo(f"{c.id}: {c.rule}")
        return
    try:
        select(check)
        node = CommandNode(node_command, log_path=work_dir / "node.log")
        settings = KitSettings(
            broker_url=broker,
            node_broker_url=node_broker,
            node_id=node_id,
            work_dir=work_dir,
            timeout_s=timeout,
            media_host=media_host,
        )
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(run_conformance(settings, node, check))
    except (ValueError, OSError) as exc:  # a broker URL that cannot work, no broker there
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    finally:
        node.close()
    typer.echo(report.text())
    if json_out is not None:
        json_out.write_text(report.dumps() + "\n", encoding="utf-8")
    raise typer.Exit(0 if report.passed else 1)
