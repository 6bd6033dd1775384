"""Ordinals and Roman numerals: "thứ 2" -> "thứ hai", "lần thứ 1" -> "lần thứ nhất", "quý II"."""

from __future__ import annotations

import re

from audio.normalize.numbers import cardinal, ordinal, roman_value

__all__ = ["ROMAN_CONTEXT_WORDS", "read_ordinals"]

# Roman numerals are only trusted after these words: elsewhere "V" or "X" is more likely
# a letter or an initial ("ông Nguyễn Văn X").
ROMAN_CONTEXT_WORDS = (
    "quý", "khóa", "khoá", "phần", "chương", "kỳ", "kì", "đợt", "giai đoạn", "thế kỷ",
    "thế kỉ", "mục", "tập", "vòng", "đại hội", "kỳ họp", "hội nghị", "lần", "báo động", "cấp",
    "khu vực", "vùng", "loại", "hạng",
)  # fmt: skip

_ORDINAL = re.compile(r"(?i:\b(thứ))\s+(\d{1,3})(?![\d/])(?![.,]\d)")
_ORDINAL_ROMAN = re.compile(r"(?i:\b(thứ))\s+([IVXLCDM]+)(?![\w])")
_ROMAN = re.compile(
    r"(?i:\b("
    + "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ROMAN_CONTEXT_WORDS)
    + r"))\s+([IVXLCDM]+)(?![\w])"
)


def read_ordinals(text: str) -> str:
    """Weekdays and ordinals after "thứ", and Roman numerals after words that number things."""

    def arabic_ordinal(match: re.Match[str]) -> str:
        return f"{match.group(1)} {ordinal(int(match.group(2)))}"

    def roman(match: re.Match[str], *, as_ordinal: bool) -> str:
        value = roman_value(match.group(2))
        if value is None:
            return match.group(0)
        return f"{match.group(1)} {ordinal(value) if as_ordinal else cardinal(value)}"

    text = _ORDINAL.sub(arabic_ordinal, text)
    text = _ORDINAL_ROMAN.sub(lambda m: roman(m, as_ordinal=True), text)
    return _ROMAN.sub(lambda m: roman(m, as_ordinal=False), text)
