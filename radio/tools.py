"""What the command-line tools share: their settings, and the registry opened outside the
running service."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from controller.auth.keys import load_or_create_signer
from controller.core.config import ConfigError, Settings
from controller.core.db import Database
from controller.core.private_files import secure_data_dir
from controller.fleet.registry import Registry
from protocol import Topics


def open_registry(settings: Settings) -> Registry:
    secure_data_dir(settings.data_dir)
    db = Database(settings.db_url)
    db.migrate()
    return Registry(
        settings, db, Topics(settings.topic_prefix), load_or_create_signer(settings.secrets_dir)
    )


def load_settings(**overrides: Any) -> Settings:
    """The settings, or a clear message and exit status 2 when they are wrong."""
    try:
        return Settings(**overrides)
    except (ValidationError, ConfigError) as exc:
        typer.secho(f"Configuration error:\n{exc}", fg="red", err=True)
        raise typer.Exit(2) from None
