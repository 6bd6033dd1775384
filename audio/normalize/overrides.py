"""One reading fixed by hand inside one announcement: `[[UBND|ủy ban nhân dân]]`.

The part before `|` is what people see (titles, lists, the text as written); the part after
it is spoken exactly as written, past every rule of the normaliser. The dictionary is not
touched, so an officer can fix one word of one announcement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Override", "find_overrides", "hide_overrides", "shown_text"]

# Neither part may hold brackets or a bar; the reading must hold something to say.
OVERRIDE = re.compile(r"\[\[([^\[\]|\n]*)\|([^\[\]|\n]*\S[^\[\]|\n]*)\]\]")

# Placeholders are characters of the Unicode private use area: no rule of the normaliser
# reads them (they are neither letters, digits nor punctuation), so the reading behind
# them passes through untouched. Such characters in the text itself are dropped first.
_FIRST, _LAST = 0xE000, 0xF8FF
_PRIVATE = re.compile(f"[{chr(_FIRST)}-{chr(_LAST)}]")


@dataclass(frozen=True, slots=True)
class Override:
    """`shown` is written in the text, `reading` is spoken in its place."""

    shown: str
    reading: str


def find_overrides(text: str) -> list[Override]:
    """The overrides of `text`, in order."""
    return [_override(match) for match in OVERRIDE.finditer(text)]


def _override(match: re.Match[str]) -> Override:
    return Override(" ".join(match.group(1).split()), " ".join(match.group(2).split()))


def shown_text(text: str) -> str:
    """`text` as people read it: each override replaced by its shown part."""
    return OVERRIDE.sub(lambda match: _override(match).shown, text)


def hide_overrides(text: str) -> tuple[str, Callable[[str], str]]:
    """`text` with each override replaced by a placeholder no rule reads, and the function
    that puts the readings back into the normalised text."""
    text = _PRIVATE.sub(" ", text)
    readings: list[str] = []

    def hide(match: re.Match[str]) -> str:
        if len(readings) > _LAST - _FIRST:
            return match.group(0)
        readings.append(_override(match).reading)
        return chr(_FIRST + len(readings) - 1)

    hidden = OVERRIDE.sub(hide, text)
    if not readings:
        return hidden, lambda spoken: spoken

    def restore(spoken: str) -> str:
        return _PRIVATE.sub(lambda m: readings[ord(m.group(0)) - _FIRST], spoken)

    return hidden, restore
