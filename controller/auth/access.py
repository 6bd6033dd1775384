"""Who may do what, where: roles, permissions and area scopes."""

from __future__ import annotations

from enum import StrEnum

from controller.core.models import Role, User
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
    manage_warning_feeds = "manage_warning_feeds"  # followed CAP feeds, their rules and codes


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


def sees_content(user: User, content_area: str | None, tree: AreaTree) -> bool:
    """Content written for an area is seen there, below and above it; content from the top
    (no area) everywhere. What a user may play or name in a playlist or schedule."""
    if content_area is None or in_scope(user, content_area, tree):
        return True
    return user.area_id is not None and tree.contains(content_area, user.area_id)


def may_change_content(user: User, content_area: str | None, tree: AreaTree) -> bool:
    """The one rule for changing or deleting content (announcements, recordings, playlists):
    the content must belong to the user's own area or one below it. Content of a higher level
    (a district's bulletin seen by a commune), and content from the top, is only read and
    played; administrators change everything."""
    return has(user, Permission.write_content) and in_scope(user, content_area, tree)
