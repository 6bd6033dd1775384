"""Fixtures for the conformance kit's tests: a Mosquitto of their own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import Mosquitto


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An anonymous Mosquitto for this module's runs."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    m = Mosquitto(tmp_path_factory.mktemp("conformance-broker"), None, None).start()
    try:
        yield f"mqtt://127.0.0.1:{m.port}"
    finally:
        m.stop()
