"""Seeding the real administrative units: every province and commune, once, by command."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlmodel import func, select

from controller.core.db import Database
from controller.core.models import Area, AreaKind
from controller.fleet.seed import seed_areas, vietnam_units


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        rows = s.exec(select(Area.kind, func.count()).group_by(Area.kind)).all()
    return {str(k): int(n) for k, n in rows}


def test_all_34_provinces_and_3321_communes_once(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'radio.db'}")
    db.migrate()
    units = vietnam_units()
    with db.session() as s:
        assert seed_areas(s, units) == (3355, 0)
        s.commit()
    assert counts(db) == {AreaKind.province: 34, AreaKind.commune: 3321}
    with db.session() as s:
        assert seed_areas(s, units) == (0, 3355)
        hanoi = s.get(Area, "vn-01")
        assert hanoi is not None and hanoi.name == "Thành phố Hà Nội"
        wards = s.exec(select(Area).where(Area.parent_id == "vn-01")).all()
        assert len(wards) > 100 and all(w.kind == AreaKind.commune for w in wards)
    db.dispose()


def test_command_seeds_chosen_provinces_and_refuses_unknown_codes(tmp_path):
    env = os.environ | {"RADIO_DATA_DIR": str(tmp_path), "RADIO_DEMO": "1"}
    cmd = [sys.executable, "-m", "radio.cli", "area", "seed-vietnam"]
    done = subprocess.run([*cmd, "--province", "1"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    hanoi = [u for u in vietnam_units({1}) if u.kind == AreaKind.commune]
    assert f"{len(hanoi) + 1} area(s) added" in done.stdout
    bad = subprocess.run([*cmd, "--province", "999"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "999" in bad.stderr
