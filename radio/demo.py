"""The demo commune: three villages, twenty simulated nodes, one announcement soon."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from controller.core.models import Area, AreaKind, Node
from controller.fleet.registry import Registry

DEMO_TEXT = (
    "UBND xã Tân Lập thông báo: lúc 7h30 sáng thứ 2, ngày 14/12/2026, tại nhà văn hóa thôn "
    "Đông sẽ tổ chức tiêm vắc xin cho trẻ em dưới 5 tuổi. Đề nghị các gia đình đưa trẻ đến "
    "đúng giờ. Mọi thắc mắc xin liên hệ trạm y tế xã, ĐT 0912 345 678."
)

VILLAGES = [
    ("thon-dong", "Thôn Đông", 7),
    ("thon-doai", "Thôn Đoài", 7),
    ("thon-trung", "Thôn Trung", 6),
]
COMMUNE = ("xa-tan-lap", "Xã Tân Lập")
PROVINCE = ("tinh-demo", "Tỉnh Demo")
BASE_LAT, BASE_LON = 21.0285, 105.8542


def seed_demo(registry: Registry) -> list[dict[str, Any]]:
    """Create the demo areas and nodes if absent; returns the provisioning of new nodes and
    rewrites it for existing ones (their passwords are rotated, since only hashes are kept)."""

    provisioning: list[dict[str, Any]] = []
    with registry.db.session() as session:
        if session.get(Area, PROVINCE[0]) is None:
            registry.add_area(session, PROVINCE[0], PROVINCE[1], AreaKind.province, None)
            registry.add_area(session, COMMUNE[0], COMMUNE[1], AreaKind.commune, PROVINCE[0])
            for vid, vname, _ in VILLAGES:
                registry.add_area(session, vid, vname, AreaKind.village, COMMUNE[0])
            session.flush()
        n = 0
        for vi, (vid, vname, count) in enumerate(VILLAGES):
            for k in range(count):
                n += 1
                node_id = f"loa-{n:02d}"
                node = session.get(Node, node_id)
                if node is None:
                    _, prov = registry.add_node(
                        session,
                        node_id,
                        f"Cụm loa {n:02d} – {vname}",
                        vid,
                        lat=BASE_LAT + vi * 0.01 + k * 0.001,
                        lon=BASE_LON + k * 0.0015,
                        hardware="sim",
                    )
                else:
                    prov = registry.reprovision(session, node)
                provisioning.append(prov)
        session.commit()
        existing = session.exec(select(Node.id)).all()
        assert len(existing) >= 20
    for prov in provisioning:
        registry.write_provisioning(prov)
    return provisioning


DEMO_USERS = [
    ("admin", "admin", None, "Quản trị viên"),
    ("canbo-tinh", "officer", PROVINCE[0], "Cán bộ Tỉnh Demo"),
    ("canbo-xa", "commune_staff", COMMUNE[0], "Cán bộ xã Tân Lập"),
    ("kythuat", "technician", COMMUNE[0], "Kỹ thuật viên xã Tân Lập"),
    ("thanhtra", "auditor", None, "Thanh tra"),
]


def seed_demo_users(registry: Registry) -> str:
    """Demo accounts, one per role, sharing one password kept in the data directory."""
    import secrets

    from controller.auth.users import create_user
    from controller.core.models import Role, User

    path = registry.settings.secrets_dir / "demo-password"
    if path.exists():
        password = path.read_text().strip()
    else:
        password = f"demo-{secrets.token_hex(4)}-{secrets.randbelow(90) + 10}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password)
        path.chmod(0o600)
    with registry.db.session() as session:
        for username, role, area, full_name in DEMO_USERS:
            if session.exec(select(User).where(User.username == username)).first() is None:
                create_user(session, username, password, Role(role), area, full_name)
    return password
