"""Release folders and the `current` symlink of a real node's firmware updates."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from firmware_sim import release


def tar_with(name: str, data: bytes = b"x") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def pending(**overrides: object) -> release.PendingUpdate:
    fields: dict[str, object] = {
        "cmd_id": "c1",
        "version": "2.0",
        "previous_version": "1.0",
        "previous_target": "releases/1.0",
        "deadline_ms": 0,
        "confirm_s": 5.0,
        "restart_command": "true",
    }
    fields.update(overrides)
    return release.PendingUpdate(**fields)  # type: ignore[arg-type]


def test_an_image_that_reaches_out_of_its_folder_is_refused_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    image = tmp_path / "evil.tar"
    image.write_bytes(tar_with("../../escaped.txt"))
    install = tmp_path / "opt"
    with pytest.raises(release.ReleaseError, match="cannot unpack"):
        release.unpack(image, install, "6.6")
    assert list((install / "releases").iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    with pytest.raises(release.ReleaseError, match="cannot name a release folder"):
        release.unpack(image, install, "../1.0")


def test_an_image_that_is_no_archive_is_kept_whole(tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\x7fELF firmware")
    folder = release.unpack(image, tmp_path / "opt", "1.1")
    assert (folder / "image.bin").read_bytes() == b"\x7fELF firmware"
    assert (folder / "VERSION").read_text() == "1.1\n"


def test_a_rollback_and_a_late_confirmation_cannot_both_win(tmp_path: Path) -> None:
    install = tmp_path / "opt"
    for version in ("1.0", "2.0"):
        (install / "releases" / version).mkdir(parents=True)
        (install / "releases" / version / "VERSION").write_text(version)
    os.symlink("releases/1.0", install / "current")
    release.begin(install, pending(), install / "releases" / "2.0")
    assert release.current_version(install) == "2.0"
    # Only the new version confirms; the old one coming up changes nothing.
    assert release.settle(install, "confirmed", running="1.0").status == "installed"  # type: ignore[union-attr]
    rolled = release.settle(install, "rolled_back", running="")
    assert rolled is not None and rolled.status == "rolled_back"
    assert os.readlink(install / "current") == "releases/1.0"
    late = release.settle(install, "confirmed", running="2.0")
    assert late is not None and late.status == "rolled_back"
    assert release.current_version(install) == "1.0"
