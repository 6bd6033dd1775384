"""The data directory is the service's alone (folders 0700, files 0600), and a secret key that
is given must be long enough, in demo mode too."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from controller.core.config import Settings
from tests.conftest import running_controller
from tests.controller.test_broadcast_e2e import make_commune


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base, name)
            found[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return found


async def test_everything_under_the_data_dir_is_private(make_settings, tmp_path):
    settings = make_settings()
    # What an older version left behind: a world-readable folder and database.
    settings.data_dir.mkdir(mode=0o755, exist_ok=True)
    settings.data_dir.chmod(0o755)
    db = settings.data_dir / "radio.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    async with running_controller(settings) as ctl:
        configs = await make_commune(ctl, 2)  # broker files
        ctl.service.registry.write_provisioning(configs[0].model_dump(mode="json"))
        r = await ctl.api(
            "POST", "/announcements", json={"title": "Họp thôn", "text": "Thông báo họp thôn."}
        )
        assert r.status_code == 201, r.text  # media: a rendered MP3 in the store
        found = modes(settings.data_dir)
    assert "radio.db" in found and "broker/passwd" in found
    assert any(k.startswith("provisioning/") for k in found)
    assert any(k.endswith(".mp3") for k in found)
    assert any(k.startswith("secrets/") for k in found)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (settings.data_dir / name).is_dir() else 0o600)
    }
    assert wrong == {}


@pytest.mark.parametrize("demo", [True, False])
def test_a_short_secret_key_is_refused(tmp_path, demo):
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(data_dir=tmp_path, demo=demo, secret_key="x")
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(data_dir=tmp_path, demo=demo, secret_key="k" * 31)
    assert Settings(data_dir=tmp_path, demo=demo, secret_key="k" * 32).secret_key == "k" * 32
