"""Parsing and checking the RFC 5545 RRULE subset that schedules may use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal, NotRequired, TypedDict

from dateutil import rrule as du

from schedules.errors import InvalidRecurrence
from schedules.localtime import LOCAL_TZ

FREQUENCIES: dict[str, Literal[1, 2, 3]] = {
    "DAILY": du.DAILY,
    "WEEKLY": du.WEEKLY,
    "MONTHLY": du.MONTHLY,
}
SUPPORTED = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYHOUR", "BYMINUTE")
# Known to RFC 5545 but refused, so an officer learns it is unsupported rather than misspelt.
UNSUPPORTED = ("BYSECOND", "BYSETPOS", "BYWEEKNO", "BYYEARDAY", "BYMONTH", "WKST")
WEEKDAYS = {
    "MO": du.MO,
    "TU": du.TU,
    "WE": du.WE,
    "TH": du.TH,
    "FR": du.FR,
    "SA": du.SA,
    "SU": du.SU,
}
MAX_INTERVAL = 1000
MAX_COUNT = 100_000
_BYDAY = re.compile(r"^([+-]?\d{1,2})?([A-Z]{2})$")
_SUPPORTED_TEXT = ", ".join(SUPPORTED[:-1]) + " and " + SUPPORTED[-1]


class RRuleKwargs(TypedDict):
    """The keyword arguments of dateutil's rrule that a checked rule can set."""

    freq: Literal[1, 2, 3]
    interval: int
    count: NotRequired[int]
    byweekday: NotRequired[list[du.weekday]]
    bymonthday: NotRequired[list[int]]
    byhour: NotRequired[list[int]]
    byminute: NotRequired[list[int]]


@dataclass(frozen=True)
class RuleParts:
    """A checked rule: its parts in canonical text, and what dateutil needs to expand it."""

    parts: tuple[tuple[str, str], ...]
    freq: str
    interval: int
    count: int | None
    until: datetime | None  # aware, local zone

    def get(self, name: str) -> str | None:
        return dict(self.parts).get(name)

    def kwargs(self) -> RRuleKwargs:
        """Keyword arguments for dateutil's rrule, without dtstart and until."""
        values = dict(self.parts)
        out: RRuleKwargs = {"freq": FREQUENCIES[self.freq], "interval": self.interval}
        if self.count is not None:
            out["count"] = self.count
        if "BYDAY" in values:
            out["byweekday"] = [_weekday(v) for v in values["BYDAY"].split(",")]
        if "BYMONTHDAY" in values:
            out["bymonthday"] = _int_list(values["BYMONTHDAY"])
        if "BYHOUR" in values:
            out["byhour"] = _int_list(values["BYHOUR"])
        if "BYMINUTE" in values:
            out["byminute"] = _int_list(values["BYMINUTE"])
        return out


def parse_parts(text: str) -> RuleParts:
    """Check the rule text; every refusal names the part to correct."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body:
        raise InvalidRecurrence(
            "the repetition rule is empty: start it with FREQ=DAILY, FREQ=WEEKLY or FREQ=MONTHLY"
        )
    values: dict[str, str] = {}
    for raw in body.split(";"):
        name, sep, value = raw.strip().partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not name:
            raise InvalidRecurrence(
                f"'{raw.strip()}' in the repetition rule is not NAME=VALUE: separate the parts "
                "with ';', as in FREQ=DAILY;BYHOUR=6,17;BYMINUTE=0"
            )
        if name in UNSUPPORTED:
            raise InvalidRecurrence(
                f"{name} is not supported in a repetition rule: use only {_SUPPORTED_TEXT}"
            )
        if name not in SUPPORTED:
            raise InvalidRecurrence(
                f"{name} is not a repetition rule part: use only {_SUPPORTED_TEXT}"
            )
        if name in values:
            raise InvalidRecurrence(f"{name} is given twice in the repetition rule: keep one")
        if not value:
            raise InvalidRecurrence(f"{name}= has no value in the repetition rule")
        values[name] = value
    return _check(values)


def _check(values: dict[str, str]) -> RuleParts:
    freq = values.get("FREQ")
    if freq is None:
        raise InvalidRecurrence(
            "the repetition rule has no FREQ: start it with FREQ=DAILY, FREQ=WEEKLY or FREQ=MONTHLY"
        )
    if freq not in FREQUENCIES:
        raise InvalidRecurrence(
            f"FREQ={freq} is not supported: repeat DAILY, WEEKLY or MONTHLY, and give several "
            "times a day with BYHOUR and BYMINUTE"
        )
    interval = _integer(values, "INTERVAL", 1, MAX_INTERVAL) or 1
    count = _integer(values, "COUNT", 1, MAX_COUNT)
    if count is not None and "UNTIL" in values:
        raise InvalidRecurrence("the repetition rule has both COUNT and UNTIL: keep one of them")
    for name, low, high in (("BYHOUR", 0, 23), ("BYMINUTE", 0, 59)):
        _integers(values, name, low, high, allow_negative=False)
    _integers(values, "BYMONTHDAY", 1, 31, allow_negative=True)
    if "BYDAY" in values:
        for item in values["BYDAY"].split(","):
            _check_byday(item, freq)
    until = _until(values["UNTIL"]) if "UNTIL" in values else None
    order = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYHOUR", "BYMINUTE", "COUNT", "UNTIL")
    parts = tuple((n, values[n]) for n in order if n in values)
    return RuleParts(parts, freq, interval, count, until)


def _integer(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in values:
        return None
    raw = values[name]
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRecurrence(f"{name}={raw} must be a whole number from {low} to {high}")
    return int(raw)


def _integers(values: dict[str, str], name: str, low: int, high: int, allow_negative: bool) -> None:
    if name not in values:
        return
    for raw in values[name].split(","):
        digits = raw[1:] if allow_negative and raw.startswith(("-", "+")) else raw
        if not digits.isdigit() or not low <= int(digits) <= high:
            span = f"{low} to {high}" + (
                f" (or -{high} to -{low} counting back)" if allow_negative else ""
            )
            raise InvalidRecurrence(f"{name} value '{raw}' must be a whole number from {span}")


def _check_byday(item: str, freq: str) -> None:
    match = _BYDAY.match(item)
    if match is None or match.group(2) not in WEEKDAYS:
        raise InvalidRecurrence(
            f"BYDAY value '{item}' is not a day: use MO, TU, WE, TH, FR, SA or SU"
        )
    ordinal = match.group(1)
    if ordinal is None:
        return
    if freq != "MONTHLY":
        raise InvalidRecurrence(
            f"BYDAY={item} picks a weekday within a month, which only FREQ=MONTHLY allows: "
            f"use plain {match.group(2)} with FREQ={freq}"
        )
    if not 1 <= abs(int(ordinal)) <= 5:
        raise InvalidRecurrence(
            f"BYDAY={item}: a month has at most five of each weekday, use 1 to 5 or -1 to -5"
        )


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _weekday(item: str) -> du.weekday:
    match = _BYDAY.match(item)
    assert match is not None
    day = WEEKDAYS[match.group(2)]
    return day(int(match.group(1))) if match.group(1) else day


def _until(raw: str) -> datetime:
    """UNTIL as an aware local datetime; a bare date includes that whole local day."""
    try:
        if re.fullmatch(r"\d{8}", raw):
            return datetime.combine(
                datetime.strptime(raw, "%Y%m%d").date(), time(23, 59, 59), LOCAL_TZ
            )
        if re.fullmatch(r"\d{8}T\d{6}Z", raw):
            utc = datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return utc.astimezone(LOCAL_TZ)
        if re.fullmatch(r"\d{8}T\d{6}", raw):
            return datetime.strptime(raw, "%Y%m%dT%H%M%S").replace(tzinfo=LOCAL_TZ)
    except ValueError:
        pass
    raise InvalidRecurrence(
        f"UNTIL={raw} is not a date: write it as YYYYMMDD (that day included) "
        "or YYYYMMDDTHHMMSSZ (UTC)"
    )


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), LOCAL_TZ)
