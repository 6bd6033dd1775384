"""People who use the system: creation with password rules, for the API and the command line."""

from __future__ import annotations

from sqlmodel import Session, select

from controller.auth.security import check_password_rules, hash_password
from controller.core.models import Area, Role, User


class UserError(ValueError):
    """A user that cannot be created; the message says why."""


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    area_id: str | None = None,
    full_name: str = "",
) -> User:
    from controller.auth.security import WeakPassword
    from protocol import valid_id

    if not valid_id(username):
        raise UserError("user name: lowercase letters, digits, '-', '_' or '.' (max 64)")
    try:
        check_password_rules(password, username)
    except WeakPassword as exc:
        raise UserError(str(exc)) from None
    if role not in (Role.admin, Role.auditor) and not area_id:
        raise UserError(f"role {role} needs an area (the area the person works in)")
    if area_id and session.get(Area, area_id) is None:
        raise UserError(f"area {area_id!r} does not exist")
    if session.exec(select(User).where(User.username == username)).first():
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        area_id=area_id,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user
