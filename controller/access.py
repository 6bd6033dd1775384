"""Who may do what, where: roles, permissions and area scopes."""

from __future__ import annotations

from enum import StrEnum

from controller.models import Role, User
from schedules import AreaTree


class Permission(StrEnum):
    read = "read"  # areas, nodes, announcements, schedules, deliveries in scope
    manage_areas = "manage_areas"
    manage_nodes = "manage_nodes"  # register, provision, retire
    command = "command"  # volume, test tone, reboot …
    write_content = "write_content"  # announcements, uploads
    schedule = "schedule"
    approve = "approve"
    alert = "alert"
    read_audit = "read_audit"
    manage_users = "manage_users"
    manage_dictionary = "manage_dictionary"  # the reading dictionary, for every area
    manage_firmware = "manage_firmware"  # the firmware catalogue, for every area


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.officer: frozenset(
        {
            Permission.read,
            Permission.write_content,
            Permission.schedule,
            Permission.approve,
            Permission.alert,
        }
    ),
    Role.commune_staff: frozenset(
        {Permission.read, Permission.write_content, Permission.schedule, Permission.alert}
    ),
    Role.technician: frozenset({Permission.read, Permission.manage_nodes, Permission.command}),
    Role.auditor: frozenset({Permission.read, Permission.read_audit}),
}


class Forbidden(Exception):
    """The user lacks the right; the message says which, in the user's terms."""


def has(user: User, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(Role(user.role), frozenset())


def in_scope(user: User, area_id: str | None, tree: AreaTree) -> bool:
    """Administrators and auditors see everything; others their area and what lies below it."""
    if user.role in (Role.admin, Role.auditor) or user.area_id is None:
        return user.role in (Role.admin, Role.auditor)
    if area_id is None:
        return False
    return tree.contains(user.area_id, area_id)


def require(
    user: User,
    permission: Permission,
    area_ids: list[str] | None = None,
    tree: AreaTree | None = None,
) -> None:
    if not has(user, permission):
        raise Forbidden(f"role {user.role} may not {permission.value.replace('_', ' ')}")
    if area_ids is not None:
        assert tree is not None
        outside = [a for a in area_ids if not in_scope(user, a, tree)]
        if outside:
            raise Forbidden(f"outside your area ({user.area_id}): {', '.join(outside)}")
