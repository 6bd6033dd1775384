"""Dates and clock times read aloud: "14/01/2021", "ngày 2/9", "15-17/3", "7h30", "14:00"."""

from __future__ import annotations

import re

from audio.normalize.numbers import cardinal, month_name

__all__ = ["FRACTION_AFTER", "FRACTION_BEFORE", "read_dates", "read_fractions", "read_times"]

_DAY_WORD = r"(?:(?i:\b(ngày))\s+)?"
_FULL_DATE = re.compile(
    _DAY_WORD + r"(?<![\d.,/])(\d{1,2})([/.-])(\d{1,2})\3(\d{4})(?![\d/])(?![.,]\d)"
)
_DAY_RANGE = re.compile(
    _DAY_WORD + r"(?<![\d.,/])(\d{1,2})\s*[-–]\s*(\d{1,2})/(\d{1,2})(?:/(\d{4}))?(?![\d/])"
)
_MONTH_YEAR = re.compile(r"(?:(?i:\b(tháng))\s+)?(?<![\d.,/])(\d{1,2})/(\d{4})(?![\d/])")
_DAY_MONTH = re.compile(_DAY_WORD + r"(?<![\d.,/])(\d{1,2})/(\d{1,2})(?![\d/])(?![.,]\d)")
# With dashes, a day and month only count as a date right after "ngày" ("ngày 14-1").
_DASHED_DAY_MONTH = re.compile(r"(?i:\b(ngày))\s+(\d{1,2})-(\d{1,2})(?![\d/-])(?!\s*(?i:tháng)\b)")
_MONTH = re.compile(r"(?i:\b(tháng))\s+(\d{1,2})(?![\d/])(?![.,]\d)")

# A slash between small numbers is a fraction ("3/4 diện tích"), not a date, when a noun of
# quantity follows or a word of comparison or share comes before; "ngày 3/4" stays a date.
FRACTION_AFTER = (
    "diện tích", "số", "tổng số", "dân số", "kế hoạch", "chỉ tiêu", "viên", "lượng",
    "khối lượng", "giá trị", "kinh phí", "thời gian", "chiều dài", "quãng đường", "sản lượng",
    "số lượng", "lương", "mức", "phần", "cốc", "bát", "thìa",
)  # fmt: skip
FRACTION_BEFORE = (
    "khoảng", "gần", "hơn", "trên", "dưới", "bằng", "chiếm", "đạt", "còn", "mất", "uống",
    "thu hồi", "quá", "tới", "gấp", "có", "được",
)  # fmt: skip
_DATE_WORDS = ("ngày", "sáng", "trưa", "chiều", "tối", "đêm", "hôm", "rạng sáng", "từ", "đến",
               "trước", "sau", "dịp")  # fmt: skip
_FRACTION = re.compile(r"(?<![\w.,/])(\d{1,2})/(\d{1,2})(?![\w/])(?![.,]\d)")
_AFTER_FRACTION = re.compile(
    r"\s+(?:" + "|".join(map(re.escape, FRACTION_AFTER)) + r")(?![^\W_])", re.IGNORECASE
)
_BEFORE_FRACTION = re.compile(
    r"(?<![^\W_])(" + "|".join(map(re.escape, (*FRACTION_BEFORE, *_DATE_WORDS))) + r")\s+$",
    re.IGNORECASE,
)
# "ngày 11 và 12/6": the day word already said applies to the second day too.
_AFTER_LISTED_DAY = re.compile(r"(?i:\bngày)\s+\d{1,2}\s*(?:,|và|hoặc|hay)\s*$")

_TIME = r"\d{1,2}(?:[hH](?:[0-5]\d)?|:[0-5]\d)(?:['′p]|\s?phút)?"
_TIME_RANGE = re.compile(rf"(?<![\d.,/:])({_TIME}|\d{{1,2}})\s*[-–]\s*({_TIME})(?![^\W_])")
_SINGLE_TIME = re.compile(rf"(?<![\d.,/:])({_TIME})(?![^\W_])(?!:\d)")
_TIME_PARTS = re.compile(r"(\d{1,2})(?:[hH]([0-5]\d)?|:([0-5]\d))?")


def _valid(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _date_words(day_word: str | None, day: int, month: int, year: str | None) -> str:
    words = f"{day_word or 'ngày'} {cardinal(day)} tháng {month_name(month)}"
    return f"{words} năm {cardinal(int(year))}" if year else words


def read_fractions(text: str) -> str:
    """ "3/4 diện tích" -> "ba phần tư diện tích", "trên 2/3" -> "trên hai phần ba"."""

    def replace(match: re.Match[str]) -> str:
        numerator, denominator = int(match.group(1)), int(match.group(2))
        if not 0 < numerator < denominator <= 10:
            return match.group(0)
        before = _BEFORE_FRACTION.search(text, max(0, match.start() - 12), match.start())
        if before and before.group(1).lower() in _DATE_WORDS:
            return match.group(0)
        if before is None and not _AFTER_FRACTION.match(text, match.end()):
            return match.group(0)
        return f"{cardinal(numerator)} phần {month_name(denominator)}"

    return _FRACTION.sub(replace, text)


def read_dates(text: str) -> str:
    """Spell dates in words, adding "ngày" before a bare day/month when the text lacks it."""

    def full(match: re.Match[str]) -> str:
        day_word, day, _, month, year = match.groups()
        if not _valid(int(day), int(month)):
            return match.group(0)
        return _date_words(day_word, int(day), int(month), year)

    def day_range(match: re.Match[str]) -> str:
        day_word, first, last, month, year = match.groups()
        if not (_valid(int(first), int(month)) and _valid(int(last), int(month))):
            return match.group(0)
        head = f"{day_word or 'ngày'} {cardinal(int(first))} đến "
        return head + _date_words(None, int(last), int(month), year).removeprefix("ngày ")

    def month_year(match: re.Match[str]) -> str:
        month_word, month, year = match.groups()
        if not 1 <= int(month) <= 12:
            return match.group(0)
        return f"{month_word or 'tháng'} {month_name(int(month))} năm {cardinal(int(year))}"

    def day_month(match: re.Match[str]) -> str:
        day_word, day, month = match.groups()
        if not _valid(int(day), int(month)):
            return match.group(0)
        words = _date_words(day_word, int(day), int(month), None)
        if day_word is None and _AFTER_LISTED_DAY.search(match.string, 0, match.start()):
            return words.removeprefix("ngày ")
        return words

    def month_only(match: re.Match[str]) -> str:
        month_word, month = match.groups()
        if not 1 <= int(month) <= 12:
            return match.group(0)
        return f"{month_word} {month_name(int(month))}"

    text = _FULL_DATE.sub(full, text)
    text = _DAY_RANGE.sub(day_range, text)
    text = _MONTH_YEAR.sub(month_year, text)
    text = _DAY_MONTH.sub(day_month, text)
    text = _DASHED_DAY_MONTH.sub(day_month, text)
    return _MONTH.sub(month_only, text)


def _time_words(written: str) -> str | None:
    """ "7h30" -> "bảy giờ ba mươi phút", "14:00" -> "mười bốn giờ"; None if not a clock time."""
    match = _TIME_PARTS.match(written)
    if match is None:
        return None
    hour = int(match.group(1))
    minute = int(match.group(2) or match.group(3) or 0)
    if hour > 24 or (hour == 24 and minute):
        return None
    words = f"{cardinal(hour)} giờ"
    return f"{words} {cardinal(minute)} phút" if minute else words


def read_times(text: str) -> str:
    """Clock times and time ranges: "7h-11h" -> "bảy giờ đến mười một giờ"."""

    def time_range(match: re.Match[str]) -> str:
        first, last = match.groups()
        last_words = _time_words(last)
        if last_words is None or (first_words := _time_words(first)) is None:
            return match.group(0)
        if first.isdigit():
            # "7-11h": the first hour borrows the unit of the second.
            first_words = cardinal(int(first))
        return f"{first_words} đến {last_words}"

    def single(match: re.Match[str]) -> str:
        return _time_words(match.group(1)) or match.group(0)

    text = _TIME_RANGE.sub(time_range, text)
    return _SINGLE_TIME.sub(single, text)
