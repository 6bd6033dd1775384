"""The console's words: one TOML catalogue per language, Vietnamese first, English by switch."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "radio_lang"
LOCALES = Path(__file__).parent / "locales"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every message of one language, keyed `section.name` as in the TOML file."""
    with (LOCALES / f"{lang}.toml").open("rb") as f:
        return _flatten(tomllib.load(f))


def language_of(request: Request) -> str:
    """`?lang=` first (the switch), then the cookie the switch left, then Vietnamese."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGUAGES else DEFAULT_LANGUAGE


class Words:
    """Looks a message up by key; a key missing in English falls back to Vietnamese."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._own = catalogue(lang)
        self._default = catalogue(DEFAULT_LANGUAGE)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._own.get(key) or self._default.get(key) or key
        return text.format(**values) if values else text

    def __contains__(self, key: str) -> bool:
        return key in self._own or key in self._default

    def section(self, prefix: str) -> dict[str, str]:
        """A catalogue section for the page's JavaScript, e.g. every `js.*` message."""
        keys = {k for k in self._default if k.startswith(prefix)} | {
            k for k in self._own if k.startswith(prefix)
        }
        return {k[len(prefix) :]: self(k) for k in sorted(keys)}
