"""What each command accepts from an operator, checked before anything is signed or sent."""

from __future__ import annotations

from typing import Any, TypeGuard

from controller.core.errors import Invalid
from protocol import CommandName

ACCEPTS: dict[CommandName, dict[str, str]] = {
    CommandName.volume: {"level": "an integer from 0 to 100 (required)"},
    CommandName.stop: {},
    CommandName.test_tone: {"duration_ms": "an integer from 100 to 30000 (default 3000)"},
    CommandName.resync: {},
    CommandName.reboot: {},
    CommandName.update_firmware: {"version": "a version in the firmware catalogue (required)"},
}


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_args(name: CommandName, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as they will be sent (for `update_firmware`, what the operator gave);
    Invalid names what is wrong and what the command takes."""
    accepts = ACCEPTS[name]
    unknown = sorted(set(args) - set(accepts))
    if unknown:
        takes = "; ".join(f"{k}: {v}" for k, v in accepts.items()) or "no arguments"
        raise Invalid(f"{name} does not take {', '.join(unknown)[:200]}; it takes {takes}")
    if name == CommandName.volume:
        level = args.get("level")
        if not _integer(level) or not 0 <= level <= 100:
            raise Invalid("volume needs args.level, an integer from 0 to 100", code="volume_level")
        return {"level": level}
    if name == CommandName.test_tone:
        duration = args.get("duration_ms", 3000)
        if not _integer(duration) or not 100 <= duration <= 30_000:
            raise Invalid(
                "test_tone's args.duration_ms must be an integer from 100 to 30000",
                code="tone_duration",
            )
        return {"duration_ms": duration}
    if name == CommandName.update_firmware:
        version = args.get("version")
        if not isinstance(version, str) or not version.strip():
            raise Invalid(
                "update_firmware needs args.version, a version in the firmware catalogue "
                "(GET /api/v1/firmware)"
            )
        return {"version": version.strip()}
    return {}
