"""Numbers read aloud the Northern way: cardinals, decimals, digits, ordinals and Roman numerals."""

from __future__ import annotations

import re

__all__ = [
    "AMOUNT",
    "cardinal",
    "digits",
    "month_name",
    "ordinal",
    "read_amount",
    "read_number",
    "roman_value",
]

DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# A written quantity: dotted thousands ("1.671", "25.000") or plain digits, with an
# optional decimal comma ("2,5"); an optional range to a second quantity ("2-3", "25-30").
NUMBER = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
AMOUNT = rf"(?<!\d)(?<!\d[.,])(?:{NUMBER})(?:\s*[-–]\s*(?:{NUMBER}))?(?!\d)(?![.,]\d)"

_RANGE_SPLIT = re.compile(r"\s*[-–]\s*")
_ROMAN_VALUES = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)  # fmt: skip


def _below_thousand(n: int, padded: bool) -> str:
    """0 < n < 1000; `padded` when a higher group precedes, which voices "không trăm"/"linh"."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or padded:
        words += [DIGIT_WORDS[hundreds], "trăm"]
    if tens == 0:
        if units and words:
            words += ["linh", DIGIT_WORDS[units]]
        elif units:
            words.append(DIGIT_WORDS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else DIGIT_WORDS[units])
    else:
        words += [DIGIT_WORDS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(units, DIGIT_WORDS[units]))
    return " ".join(words)


def _below_billion(n: int, padded: bool) -> str:
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    parts: list[str] = []
    for value, scale in ((millions, "triệu"), (thousands, "nghìn"), (units, "")):
        if value == 0:
            continue
        words = _below_thousand(value, padded or bool(parts))
        parts.append(f"{words} {scale}" if scale else words)
    return " ".join(parts)


def cardinal(n: int) -> str:
    """1671 -> "một nghìn sáu trăm bảy mươi mốt"; zero groups are skipped, as announcers do."""
    if n < 0:
        return "âm " + cardinal(-n)
    if n == 0:
        return DIGIT_WORDS[0]
    if n >= 1_000_000_000:
        high, low = divmod(n, 1_000_000_000)
        head = cardinal(high) + " tỷ"
        return f"{head} {_below_billion(low, True)}" if low else head
    return _below_billion(n, False)


def digits(text: str) -> str:
    """Digit by digit: "0912" -> "không chín một hai"."""
    return " ".join(DIGIT_WORDS[int(d)] for d in text if d.isdigit())


def ordinal(n: int) -> str:
    """The number after "thứ": 1 -> "nhất", 4 -> "tư", otherwise the cardinal."""
    return {1: "nhất", 4: "tư"}.get(n, cardinal(n))


def month_name(month: int) -> str:
    """Month 4 is "tư"; the others are their cardinal ("một" ... "mười hai")."""
    return "tư" if month == 4 else cardinal(month)


def _fraction(text: str) -> str:
    """The part after the decimal comma: leading zeros are voiced, short tails read as a number."""
    zeros = len(text) - len(text.lstrip("0"))
    rest = text[zeros:]
    words = [DIGIT_WORDS[0]] * zeros
    if rest:
        words.append(cardinal(int(rest)) if len(rest) <= 3 else digits(rest))
    return " ".join(words)


def read_number(text: str) -> str:
    """One quantity: "1.671", "2,5", "0,05", "007"; long or zero-led codes digit by digit."""
    whole, _, fraction = text.partition(",")
    plain = whole.replace(".", "")
    if len(plain) > 15 or (len(plain) >= 4 and plain.startswith("0")):
        spoken = digits(plain)
    else:
        spoken = cardinal(int(plain))
    return f"{spoken} phẩy {_fraction(fraction)}" if fraction else spoken


def read_amount(text: str) -> str:
    """A quantity or a range of two: "25-30" -> "hai mươi lăm đến ba mươi"."""
    return " đến ".join(read_number(part) for part in _RANGE_SPLIT.split(text.strip()))


def roman_value(numeral: str) -> int | None:
    """Value of a well-formed upper-case Roman numeral, else None ("IIII" and "IC" are refused)."""
    if not numeral or not re.fullmatch(r"[IVXLCDM]+", numeral):
        return None
    value, rest = 0, numeral
    for amount, symbol in _ROMAN_VALUES:
        while rest.startswith(symbol):
            value += amount
            rest = rest[len(symbol) :]
    if rest or _to_roman(value) != numeral:
        return None
    return value


def _to_roman(value: int) -> str:
    out = []
    for amount, symbol in _ROMAN_VALUES:
        count, value = divmod(value, amount)
        out.append(symbol * count)
    return "".join(out)
