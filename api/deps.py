"""Typed FastAPI dependencies: routes read like their contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from controller.service import RadioService


def get_service(request: Request) -> RadioService:
    service: RadioService = request.app.state.service
    return service


ServiceDep = Annotated[RadioService, Depends(get_service)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    with service.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
