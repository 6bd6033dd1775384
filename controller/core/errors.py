"""Domain errors, raised by the controller and turned into 4xx answers at the HTTP edge."""

from __future__ import annotations


class DomainError(Exception):
    """Something the user asked for cannot be done; `str(err)` says what to fix."""

    status = 400
    # For the console to say it in the user's language (api/errors.py); each kind has its own,
    # and an error that needs words of its own has a code of its own.
    code: str = "bad_request"

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Invalid(DomainError):
    status = 422
    code = "invalid_input"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Misconfigured(Conflict):
    """The controller's settings do not allow it (e.g. no address nodes can reach); an
    administrator must change them."""

    code = "controller_misconfigured"


class Unavailable(DomainError):
    status = 503
    code = "unavailable"


class StorageFull(DomainError):
    """The disk holding media (or the database) has no space left; nothing was saved."""

    status = 507
    code = "storage_full"


NO_SPACE = ("No space left on device", "Disk quota exceeded")


def is_no_space(exc: BaseException) -> bool:
    """A full disk, however it surfaced: an OSError, or a tool's message (ffmpeg's stderr)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in NO_SPACE)
