"""The firmware catalogue: node images stored by their sha256 like media, and the newest release."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from audio.store import MediaStore
from controller.core.config import Settings
from controller.core.db import Database
from controller.core.errors import Conflict, Invalid, NotFound
from controller.core.models import FirmwareImage
from protocol import FirmwareUpdate

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_PARTS = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Orders versions as people read them: 1.9 < 1.10 < 2.0 (numbers compare as numbers)."""
    return tuple(
        (1, int(p), "") if p.isdigit() else (0, 0, p.lower()) for p in _PARTS.findall(version)
    )


def latest_version(session: Session, hardware: str | None = None) -> str | None:
    """The newest released version (for this hardware, when given), or None if none is."""
    query = select(FirmwareImage.version, FirmwareImage.hardware).where(
        FirmwareImage.released == True  # noqa: E712
    )
    versions = [
        v for v, hw in session.exec(query).all() if hardware is None or hw in ("", hardware)
    ]
    return max(versions, key=version_key, default=None)


class FirmwareCatalogue:
    """Adds, lists and releases images; the bytes live under `data/firmware/` by sha256."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.db = db
        self.store = MediaStore(settings.data_dir / "firmware", suffix=".bin")
        self.max_bytes = int(settings.firmware_max_mb * 1024 * 1024)
        self.base_url = settings.base_url

    def url(self, sha256: str) -> str:
        return f"{self.base_url}/firmware/{sha256}.bin"

    def spool(self) -> Path:
        """A temporary file on the store's file system, for an upload to be written to."""
        fd, name = tempfile.mkstemp(dir=self.store.tmp_dir, prefix="up-", suffix=".bin")
        os.close(fd)
        return Path(name)

    def add(
        self,
        image: Path,
        version: str,
        *,
        hardware: str = "",
        notes: str = "",
        released: bool = True,
        author: str = "",
        move: bool = False,
    ) -> FirmwareImage:
        """Store an image under a new version; refused when the version is taken."""
        if not VERSION.match(version):
            raise Invalid(
                f"firmware version {version[:80]!r}: use letters, digits, '.', '-', '_' or '+' "
                "(max 64), e.g. 2.1.0"
            )
        if len(hardware) > 100 or len(notes) > 500:
            raise Invalid("hardware is limited to 100 characters and notes to 500")
        size = image.stat().st_size
        if size == 0:
            raise Invalid("the firmware image is empty")
        if size > self.max_bytes:
            raise Invalid(f"the firmware image is larger than {self.max_bytes // 2**20} MB")
        with self.db.session() as session:
            existing = session.get(FirmwareImage, version)
            if existing is not None:
                raise Conflict(
                    f"firmware {version} is already in the catalogue (sha256 "
                    f"{existing.sha256[:12]}…): give the new image a new version"
                )
        sha256 = self.store.put_file(image, move=move)
        row = FirmwareImage(
            version=version,
            sha256=sha256,
            size=size,
            hardware=hardware,
            notes=notes,
            released=released,
            uploaded_by=author,
        )
        with self.db.session() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # the same version added at the same moment elsewhere
                raise Conflict(f"firmware {version} is already in the catalogue") from None
            session.refresh(row)
        return row

    def add_file(self, path: Path, version: str, **kw: Any) -> FirmwareImage:
        """From the command line: the operator's file is copied, never moved."""
        if not path.is_file():
            raise Invalid(f"{path}: no such file")
        spool = self.spool()
        try:
            shutil.copyfile(path, spool)
            return self.add(spool, version, move=True, **kw)
        finally:
            spool.unlink(missing_ok=True)

    def get(self, session: Session, version: str) -> FirmwareImage:
        image = session.get(FirmwareImage, version[:64])
        if image is None:
            raise NotFound(
                f"firmware {version[:80]!r} is not in the catalogue: add it first "
                "(POST /api/v1/firmware or radio firmware add)"
            )
        return image

    def release(self, version: str) -> FirmwareImage:
        with self.db.session() as session:
            image = self.get(session, version)
            image.released = True
            session.add(image)
            session.commit()
            session.refresh(image)
        return image

    def images(self, session: Session) -> list[FirmwareImage]:
        rows = list(session.exec(select(FirmwareImage)).all())
        return sorted(rows, key=lambda i: (version_key(i.version), i.created_at), reverse=True)

    def update_args(self, image: FirmwareImage) -> dict[str, Any]:
        """The `update_firmware` arguments that tell a node where and what to fetch."""
        if not self.store.has(image.sha256):
            raise Conflict(
                f"the image of firmware {image.version} is missing from the store: add it again"
            )
        return FirmwareUpdate(
            version=image.version, url=self.url(image.sha256), sha256=image.sha256, size=image.size
        ).model_dump(mode="json")
