"""Quantities with their units: money, percentages, measures, and the bare numbers left over."""

from __future__ import annotations

import re

from audio.normalize.numbers import AMOUNT, read_amount, read_number

__all__ = ["UNITS", "read_measures", "read_numbers"]

UNITS: dict[str, str] = {
    "km/h": "ki lô mét trên giờ",
    # Flows and speeds are read "trên" like km/h; other rates "một" (see _PER).
    "m3/s": "mét khối trên giây",
    "m³/s": "mét khối trên giây",
    "m/s": "mét trên giây",
    "cm3": "xăng ti mét khối",
    "cm³": "xăng ti mét khối",
    "km2": "ki lô mét vuông",
    "km²": "ki lô mét vuông",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "km": "ki lô mét",
    "cm": "xăng ti mét",
    "mm": "mi li mét",
    "m": "mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "mg": "mi li gam",
    "g": "gam",
    "ml": "mi li lít",
    "l": "lít",
    "°C": "độ xê",
    "độ C": "độ xê",
    "ºC": "độ xê",
    "°": "độ",
    "kWh": "ki lô oát giờ",
    "kVA": "ki lô vôn am pe",
    "MVA": "mê ga vôn am pe",
    "kV": "ki lô vôn",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
}

_MONEY = re.compile(rf"({AMOUNT})\s?(?:đồng|đ|Đ|VNĐ|VND|vnđ|vnd)(?![^\W_])")
_THOUSANDS_K = re.compile(rf"({AMOUNT})k(?![^\W_])")
_SCALED_MONEY = re.compile(r"\b(nghìn|ngàn|triệu|tỷ|tỉ)\s?(?:đ|VNĐ|VND|vnđ|vnd)(?![^\W_])")
_PERCENT = re.compile(rf"({AMOUNT})\s?%")
_UNIT = re.compile(
    rf"({AMOUNT})\s?({'|'.join(map(re.escape, sorted(UNITS, key=len, reverse=True)))})"
    r"(?![^\W_])"
)
# "25.000 đồng/kg" -> "... đồng một ki lô gam": a rate is read "per one" unit.
_PER_WORDS = [
    *sorted(UNITS.values(), key=len, reverse=True),
    "ngày", "tuần", "tháng", "năm", "giờ", "người", "hộ", "con", "lượt", "suất", "sào", "tấn",
]  # fmt: skip
_PER_UNIT_SYMBOLS = {k: v for k, v in UNITS.items() if k[0].isalpha() and "/" not in k}
# Any other lower-case word after a slash is a unit of the rate too ("280.000đ/mũi",
# "2 kg giống/sào"), except the conjunctions of "và/hoặc".
_PER_ANY_WORD = r"[^\W\d_]+"
_NOT_PER = frozenset({"hoặc", "và", "hay", "với"})
_PER = re.compile(
    r"(?<=[^\W\d_])\s?/\s?("
    + "|".join(map(re.escape, [*sorted(_PER_UNIT_SYMBOLS, key=len, reverse=True), *_PER_WORDS]))
    + rf"|{_PER_ANY_WORD})(?![^\W_])"
)
# Heights and lengths written "1m60": metres, then the centimetres as a number.
_METRES_CM = re.compile(r"(?<![\w.,])(\d)m(\d{2})(?![\w])")
_NEGATIVE = re.compile(r"(?<![^\s(])-(?=\d)")
_AMOUNT = re.compile(AMOUNT)
# What is left of "a/b" after dates and codes ("24/24 giờ", "24/7") is read "a trên b".
_SLASHED = re.compile(r"(?<![\w./,])(\d+)/(\d+)(?![\w/])(?![.,]\d)")
_DOTTED = re.compile(r"(?<![\d.,])(\d+)\.(\d+)(?!\d)(?![.,]\d)")


def read_measures(text: str) -> str:
    """Money, percentages and units after a number, in words."""
    text = _NEGATIVE.sub("âm ", text)
    text = _MONEY.sub(lambda m: f"{read_amount(m.group(1))} đồng", text)
    text = _SCALED_MONEY.sub(r"\1 đồng", text)
    text = _THOUSANDS_K.sub(lambda m: f"{read_amount(m.group(1))} nghìn", text)
    text = _PERCENT.sub(lambda m: f"{read_amount(m.group(1))} phần trăm", text)
    text = _UNIT.sub(lambda m: f"{read_amount(m.group(1))} {UNITS[m.group(2)]}", text)
    text = _METRES_CM.sub(lambda m: f"{read_number(m[1])} mét {read_number(m[2])}", text)
    return _PER.sub(_per, text)


def _per(match: re.Match[str]) -> str:
    unit = match.group(1)
    if unit in _NOT_PER or not unit[0].islower():
        return match.group(0)
    return f" một {_PER_UNIT_SYMBOLS.get(unit, unit)}"


def read_numbers(text: str) -> str:
    """Every remaining number; a dot that is not a thousands separator ("mục 2.5") is "chấm"."""
    text = _SLASHED.sub(lambda m: f"{read_number(m.group(1))} trên {read_number(m.group(2))}", text)
    text = _AMOUNT.sub(lambda m: f" {read_amount(m.group(0))} ", text)
    return _DOTTED.sub(lambda m: f"{read_number(m.group(1))} chấm {read_number(m.group(2))}", text)
