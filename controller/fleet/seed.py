"""Seeding the area tree with Viet Nam's real administrative units (`vietnam-provinces`).

Since the 2025 reorganisation there are two levels: 34 provinces and centrally governed cities,
and 3,321 communes, wards and special zones below them (no districts). Ids are stable and
derived from the official codes: `vn-01` for Hà Nội, `vn-01-00004` for one of its wards.
Seeding is idempotent: units already present are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from controller.core.models import Area, AreaKind


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    kind: AreaKind
    parent_id: str | None


def province_id(code: int) -> str:
    return f"vn-{code:02d}"


def vietnam_units(provinces: set[int] | None = None) -> list[Unit]:
    """Provinces first, then their communes; only the given province codes when some are."""
    from vietnam_provinces import Province, Ward

    chosen = [p for p in Province.iter_all() if provinces is None or int(p.code) in provinces]
    if provinces is not None:
        unknown = provinces - {int(p.code) for p in chosen}
        if unknown:
            raise ValueError(f"no province has the code(s) {sorted(unknown)}")
    units = [Unit(province_id(int(p.code)), p.name, AreaKind.province, None) for p in chosen]
    wanted = {int(p.code) for p in chosen}
    for w in Ward.iter_all():
        pcode = int(w.province_code)
        if pcode in wanted:
            units.append(
                Unit(
                    f"{province_id(pcode)}-{int(w.code):05d}",
                    w.name,
                    AreaKind.commune,
                    province_id(pcode),
                )
            )
    return units


def seed_areas(session: Session, units: list[Unit]) -> tuple[int, int]:
    """Add the units not yet present; returns (added, already present). The caller commits."""
    present = set(session.exec(select(Area.id)).all())
    added = [
        Area(id=u.id, name=u.name, kind=u.kind, parent_id=u.parent_id)
        for u in units
        if u.id not in present
    ]
    # Parents before children, so the foreign keys hold at every insert.
    session.add_all([a for a in added if a.parent_id is None])
    session.flush()
    session.add_all([a for a in added if a.parent_id is not None])
    session.flush()
    return len(added), len(units) - len(added)
