"""Domain errors, raised by the controller and turned into 4xx answers at the HTTP edge."""

from __future__ import annotations


class DomainError(Exception):
    """Something the user asked for cannot be done; `str(err)` says what to fix."""

    status = 400


class NotFound(DomainError):
    status = 404


class Invalid(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


class Unavailable(DomainError):
    status = 503
