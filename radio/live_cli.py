"""`radio live`: speak live from a file or a sound card (a mixing desk) to the loudspeakers.

It logs in as a person (the password from RADIO_PASSWORD, or asked), starts a live broadcast
through the API, and sends MP3 made by a local ffmpeg to the broadcast's WebSocket in real
time; the controller encodes it once for the nodes. A file ends the broadcast at its end;
Ctrl-C ends it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Annotated, Any

import httpx
import typer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.ffmpeg import ffmpeg_exe

SEND_KBPS = 128  # what travels to the controller; it re-encodes once at its own bitrate


def source_args(source: str) -> list[str]:
    """ffmpeg input arguments: `alsa:hw:1,0`, `pulse:default`, or a file (read in real time)."""
    kind, _, device = source.partition(":")
    if kind in ("alsa", "pulse") and device:
        return ["-f", kind, "-i", device]
    if not os.path.isfile(source):
        raise typer.BadParameter(f"{source}: no such file (or use alsa:DEVICE, pulse:DEVICE)")
    return ["-re", "-i", source]


def split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def live(
    source: Annotated[
        str, typer.Option("--from", help="a file, alsa:DEVICE (e.g. alsa:hw:1,0) or pulse:NAME")
    ],
    user: Annotated[str, typer.Option(help="who speaks (a user with the alert right)")],
    areas: Annotated[str, typer.Option(help="target areas, comma-separated")] = "",
    nodes: Annotated[str, typer.Option(help="target nodes, comma-separated")] = "",
    groups: Annotated[str, typer.Option(help="target groups, comma-separated")] = "",
    priority: Annotated[str, typer.Option(help="normal or priority")] = "normal",
    title: Annotated[str, typer.Option(help="what it is about")] = "Phát thanh trực tiếp",
    url: Annotated[str, typer.Option(envvar="RADIO_URL", help="the controller")] = (
        "http://127.0.0.1:8080"
    ),
    max_minutes: Annotated[float | None, typer.Option(help="ends by itself after this")] = None,
) -> None:
    """Go live on the targets with the audio of a file or a sound card."""
    args = source_args(source)
    password = os.environ.get("RADIO_PASSWORD") or typer.prompt(
        f"password of {user}", hide_input=True
    )
    body: dict[str, Any] = {
        "title": title,
        "priority": priority,
        "targets": {"areas": split(areas), "nodes": split(nodes), "groups": split(groups)},
    }
    if max_minutes is not None:
        body["max_minutes"] = max_minutes
    code = asyncio.run(_run(url.rstrip("/"), user, password, body, args))
    raise typer.Exit(code)


async def _run(url: str, user: str, password: str, body: dict[str, Any], args: list[str]) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/api/v1/auth/token", data={"username": user, "password": password})
        if r.status_code != 200:
            typer.echo(f"login refused ({r.status_code}): {_detail(r)}", err=True)
            return 1
        token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        r = await http.post("/api/v1/live", json=body, headers=headers)
        if r.status_code != 201:
            typer.echo(f"the live broadcast was refused ({r.status_code}): {_detail(r)}", err=True)
            return 1
        live = r.json()
    typer.echo(f"on air: live {live['id']} ({live['title']}); Ctrl-C to end")
    ws_url = "ws" + url.removeprefix("http") + live["audio_url"] + "?format=mp3"
    encode = ["-ac", "1", "-c:a", "libmp3lame", "-b:a", f"{SEND_KBPS}k", "-f", "mp3", "pipe:1"]
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-nostdin", "-loglevel", "error", *args, *encode,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with connect(ws_url, additional_headers=headers, max_size=2**20) as ws:
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                typer.echo(f"refused: {ready.get('detail', ready)}", err=True)
                return 1
            listen = asyncio.create_task(_listen(ws))
            try:
                assert proc.stdout is not None
                while chunk := await proc.stdout.read(4096):
                    await ws.send(chunk)
                await ws.send(json.dumps({"type": "stop"}))
                await asyncio.wait_for(listen, 10)
            finally:
                listen.cancel()
    except ConnectionClosed as exc:
        typer.echo(f"the controller closed the connection: {exc.rcvd.reason if exc.rcvd else exc}")
        return 1
    except (OSError, asyncio.CancelledError, KeyboardInterrupt):
        return await _stop(url, headers, live["id"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    typer.echo("ended")
    return 0


async def _listen(ws: Any) -> None:
    async for message in ws:
        event = json.loads(message)
        if event.get("type") == "ended":
            return
        if event.get("type") == "error":
            typer.echo(f"error: {event.get('detail')}", err=True)
            return


async def _stop(url: str, headers: dict[str, str], live_id: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post(f"/api/v1/live/{live_id}/stop", headers=headers)
    typer.echo("ended" if r.status_code == 200 else f"stop: {r.status_code} {_detail(r)}")
    return 0


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))[:300]
    except ValueError:
        return r.text[:300]
