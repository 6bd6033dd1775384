"""Opening the registry from command-line tools, outside the running service."""

from __future__ import annotations

from controller.config import Settings
from controller.db import Database
from controller.keys import load_or_create_signer
from controller.registry import Registry
from protocol import Topics


def open_registry(settings: Settings) -> Registry:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    return Registry(
        settings, db, Topics(settings.topic_prefix), load_or_create_signer(settings.secrets_dir)
    )
