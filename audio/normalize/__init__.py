"""Written Vietnamese turned into the words a careful Northern announcer would say."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from audio.abbreviations import expand_abbreviations
from audio.normalize.codes import (
    read_addresses,
    read_admin_units,
    read_km_posts,
    read_legal_references,
    read_letter_codes,
    read_number_letters,
    read_phones_and_roads,
    spell_consonant_codes,
)
from audio.normalize.dates import read_dates, read_fractions, read_times
from audio.normalize.measures import read_measures, read_numbers
from audio.normalize.numbers import cardinal, ordinal
from audio.normalize.ordinals import read_ordinals
from audio.normalize.overrides import Override, find_overrides, hide_overrides, shown_text
from audio.normalize.sentences import prepare_lines, split_sentences, tidy_punctuation

__all__ = [
    "Override",
    "cardinal",
    "find_overrides",
    "normalize",
    "ordinal",
    "shown_text",
    "split_sentences",
]


def normalize(text: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
    """The text as it should be spoken: numbers, dates, codes and abbreviations in words.

    Letters of ordinary words are kept as written (after NFC), so names keep their case.
    `extra_abbreviations` add to or override the built-in table (see audio.abbreviations).
    The order matters: codes that contain slashes, dots or capitals are read before the
    generic rules could misread them ("17/NQ-CP" is not a date, "0912.345.678" not a number).
    An inline override `[[UBND|ủy ban nhân dân]]` is spoken as the part after the bar, as
    written: it is hidden from every rule and put back at the end (audio.normalize.overrides).
    """
    text, restore = hide_overrides(unicodedata.normalize("NFC", text))
    text = prepare_lines(text)
    if extra_abbreviations:
        extra_abbreviations = {
            unicodedata.normalize("NFC", key): unicodedata.normalize("NFC", value)
            for key, value in extra_abbreviations.items()
        }
    text = read_legal_references(text)
    text = read_phones_and_roads(text)
    text = read_km_posts(text)
    text = read_admin_units(text)
    text = expand_abbreviations(text, extra_abbreviations)
    text = read_addresses(text)
    text = read_letter_codes(text)
    text = read_fractions(text)
    text = read_dates(text)
    text = read_times(text)
    text = read_ordinals(text)
    text = read_measures(text)
    text = read_number_letters(text)
    text = read_numbers(text)
    text = spell_consonant_codes(text)
    return restore(" ".join(tidy_punctuation(text).splitlines()))
