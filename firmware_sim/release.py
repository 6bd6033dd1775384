"""Installing a firmware image on a real node: a release folder, a `current` symlink switched
atomically, and the pending update kept on disk until the new version confirms it.

    install_dir/
      releases/1.4.0/     one folder per version: the image unpacked (a tar archive) or kept
                          as image.bin, and VERSION
      current -> releases/1.4.0
      update.json         the update in progress (see PendingUpdate), gone once it is settled

The service runs what `current` points at. An update unpacks the new release, switches
`current` to it and restarts the service (the `restart_command`); `firmware_sim.update_watch`,
started before the restart, puts `current` back and restarts the old version if the new one has
not come online within `update_confirm_s` (docs/node-install.md, "Firmware updates").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

CURRENT = "current"
RELEASES = "releases"
STATE = "update.json"
VERSION_FILE = "VERSION"


class ReleaseError(Exception):
    """An image that cannot be installed; the node keeps running its version."""


@dataclass
class PendingUpdate:
    cmd_id: str
    version: str
    previous_version: str
    previous_target: str  # where `current` pointed before, to switch back to
    deadline_ms: int  # wall clock: the new version must be online by then
    confirm_s: float
    restart_command: str
    status: str = "installed"  # then "confirmed" (by the new version) or "rolled_back"


def current_version(install_dir: Path) -> str | None:
    """The version `current` points at (its VERSION file), if any."""
    try:
        text = (install_dir / CURRENT / VERSION_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text[:64] or None


def unpack(image: Path, install_dir: Path, version: str) -> Path:
    """The image as releases/<version>/: a tar archive unpacked (safe members only), anything
    else kept as image.bin. Written beside and renamed, so a release folder is whole or absent."""
    if not version or "/" in version or version in (".", "..") or "\0" in version:
        raise ReleaseError(f"version {version!r} cannot name a release folder")
    releases = install_dir / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    final = releases / version
    tmp = releases / f".{version}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if tarfile.is_tarfile(image):
            with tarfile.open(image) as tar:
                # The "data" filter refuses absolute paths, links out of the folder and devices.
                tar.extractall(tmp, filter="data")
        else:
            shutil.copyfile(image, tmp / "image.bin")
        (tmp / VERSION_FILE).write_text(version + "\n", encoding="utf-8")
        if final.exists():  # a failed earlier try of the same version
            shutil.rmtree(final)
        os.replace(tmp, final)
    except (OSError, tarfile.TarError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ReleaseError(f"cannot unpack the image: {exc}") from None
    return final


def switch(install_dir: Path, target: str) -> None:
    """Point `current` at `target` in one step (a new symlink renamed over the old one)."""
    link = install_dir / CURRENT
    tmp = install_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def target_of_current(install_dir: Path) -> str | None:
    try:
        return os.readlink(install_dir / CURRENT)
    except OSError:
        return None


@contextlib.contextmanager
def _locked(install_dir: Path) -> Iterator[None]:
    """The node and the watch change update.json under one lock: a late confirmation and a
    rollback cannot both win."""
    install_dir.mkdir(parents=True, exist_ok=True)
    with open(install_dir / ".update.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load(install_dir: Path) -> PendingUpdate | None:
    try:
        data = json.loads((install_dir / STATE).read_text(encoding="utf-8"))
        return PendingUpdate(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None  # torn or foreign: nothing to confirm or roll back


def save(install_dir: Path, pending: PendingUpdate) -> None:
    path = install_dir / STATE
    tmp = path.with_name(f".{STATE}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(pending), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def prune(install_dir: Path, keep: set[str]) -> None:
    """Remove release folders other than `keep` (names under releases/): a confirmed update
    keeps itself and the one it replaced, so an SD card does not fill with old versions."""
    releases = install_dir / RELEASES
    for folder in releases.iterdir() if releases.is_dir() else ():
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def clear(install_dir: Path) -> None:
    with _locked(install_dir):
        (install_dir / STATE).unlink(missing_ok=True)


def settle(install_dir: Path, status: str, running: str) -> PendingUpdate | None:
    """Move an update from `installed` to `status` ("confirmed" by the new version once online,
    "rolled_back" by the watch), if it is still installed and, for a confirmation, `running` is
    its version. The update as it now is; None when there is none."""
    with _locked(install_dir):
        pending = load(install_dir)
        if pending is None or pending.status != "installed":
            return pending
        if status == "confirmed" and running != pending.version:
            return pending
        if status == "rolled_back":
            switch(install_dir, pending.previous_target)
        pending.status = status
        save(install_dir, pending)
        return pending


def begin(install_dir: Path, pending: PendingUpdate, release: Path) -> None:
    """Record the update, then switch `current` to the new release."""
    with _locked(install_dir):
        save(install_dir, pending)
        switch(install_dir, os.path.relpath(release, install_dir))
