"""The firmware catalogue (upload, list, release) and the images nodes download with their token."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, HTTPException, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlmodel import col, func, select

from api.deps import GuardDep, ServiceDep, SessionDep
from api.media import authorized
from controller.auth.access import Permission
from controller.commands.firmware import latest_version
from controller.core.errors import Invalid
from controller.core.models import FirmwareImage, Node

router = APIRouter(prefix="/firmware", tags=["firmware"])
files = APIRouter(tags=["firmware"])
_NAME = re.compile(r"^([0-9a-f]{64})\.bin$")


class FirmwarePublic(BaseModel):
    version: str
    sha256: str
    size: int
    hardware: str
    notes: str
    released: bool
    latest: bool
    nodes_running: int
    uploaded_by: str
    created_at: datetime


def public(image: FirmwareImage, latest: str | None, running: int) -> FirmwarePublic:
    return FirmwarePublic(
        **image.model_dump(), latest=image.version == latest, nodes_running=running
    )


@router.get("", response_model=list[FirmwarePublic])
def catalogue(guard: GuardDep, session: SessionDep, service: ServiceDep) -> list[FirmwarePublic]:
    """Newest first; `latest` marks the newest released version, `nodes_running` counts the
    active nodes in your area that report each version."""
    guard.check(Permission.read)
    rows = session.exec(
        select(Node.area_id, Node.firmware, func.count())
        .where(Node.retired == False)  # noqa: E712
        .group_by(Node.area_id, Node.firmware)
    ).all()
    running: dict[str, int] = {}
    for area_id, version, n in rows:
        if guard.sees(area_id):
            running[version] = running.get(version, 0) + n
    latest = latest_version(session)
    return [public(i, latest, running.get(i.version, 0)) for i in service.firmware.images(session)]


@router.post("", response_model=FirmwarePublic, status_code=status.HTTP_201_CREATED)
async def upload(
    guard: GuardDep,
    service: ServiceDep,
    version: Annotated[str, Form(min_length=1, max_length=64, description="e.g. 2.1.0")],
    file: Annotated[UploadFile, File(description="The firmware image")],
    hardware: Annotated[str, Form(max_length=100, description="Only for this hardware")] = "",
    notes: Annotated[str, Form(max_length=500)] = "",
    released: Annotated[bool, Form(description="false: a draft, for trials on a few nodes")] = True,
) -> FirmwarePublic:
    guard.check(Permission.manage_firmware)
    catalogue = service.firmware
    spool = catalogue.spool()
    try:
        size = 0
        with spool.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > catalogue.max_bytes:
                    raise Invalid(f"the image is larger than {catalogue.max_bytes // 2**20} MB")
                out.write(chunk)
        image = await asyncio.to_thread(
            catalogue.add,
            spool,
            version,
            hardware=hardware,
            notes=notes,
            released=released,
            author=guard.user.username,
            move=True,
        )
    finally:
        spool.unlink(missing_ok=True)
    guard.audit(
        "firmware.add",
        image.version,
        {"sha256": image.sha256, "size": image.size, "hardware": hardware, "released": released},
    )
    with service.db.session() as session:
        latest = latest_version(session)
    return public(image, latest, 0)


@router.post("/{version}/release", response_model=FirmwarePublic)
def release(version: str, guard: GuardDep, service: ServiceDep) -> FirmwarePublic:
    """Make a draft the version nodes should run (the newest release is 'latest')."""
    guard.check(Permission.manage_firmware)
    image = service.firmware.release(version)
    guard.audit("firmware.release", image.version)
    with service.db.session() as session:
        latest = latest_version(session)
        running = session.exec(
            select(func.count()).select_from(Node).where(col(Node.firmware) == image.version)
        ).one()
    return public(image, latest, running)


@files.get(
    "/firmware/{name}",
    response_model=None,
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The image"}},
)
def image_file(
    name: str, service: ServiceDep, authorization: str | None = Header(default=None)
) -> FileResponse:
    """For nodes (their media token) and logged-in people, like media."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not authorized(service, token):
        raise HTTPException(401, "firmware needs a node's media token or a user's access token")
    match = _NAME.match(name)
    path = service.firmware.store.path_for(match.group(1)) if match else None
    if match is None or path is None:
        raise HTTPException(404, "no such firmware image: use /firmware/<sha256>.bin")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"ETag": f'"{match.group(1)}"', "Cache-Control": "private, max-age=86400"},
    )
