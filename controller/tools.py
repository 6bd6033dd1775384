"""Opening the registry from command-line tools, outside the running service."""

from __future__ import annotations

from controller.config import Settings
from controller.db import Database
from controller.keys import load_or_create_signer
from controller.private_files import secure_data_dir
from controller.registry import Registry
from protocol import Topics


def open_registry(settings: Settings) -> Registry:
    secure_data_dir(settings.data_dir)
    db = Database(settings.db_url)
    db.migrate()
    return Registry(
        settings, db, Topics(settings.topic_prefix), load_or_create_signer(settings.secrets_dir)
    )
