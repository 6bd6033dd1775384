"""When a schedule plays: one time, or an iCalendar RRULE anchored in Vietnamese local time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from itertools import islice

from dateutil import rrule as du

from schedules.errors import InvalidRecurrence
from schedules.localtime import as_local, from_ms, label_date, label_dt, to_ms
from schedules.rules import RRuleKwargs, RuleParts, end_of_day, parse_parts

MAX_PER_YEAR = 5_000
# A rule that gives nothing within this span is taken as giving nothing at all; searching
# further would let one bad rule keep the controller busy for seconds.
FIRST_SEARCH = timedelta(days=5 * 366)


@dataclass(frozen=True)
class Recurrence:
    """A one-off time (`rule` None) or a checked rule whose first occurrence is `dtstart`.

    Build it with `Recurrence.once` or `parse_rrule`, which check it. `exdates` holds local
    dates (every occurrence that day is skipped) and local datetimes (that occurrence only).
    """

    dtstart: datetime
    rule: str | None = None
    exdates: tuple[date | datetime, ...] = ()
    end_date: date | None = None

    @staticmethod
    def once(at: datetime | int) -> Recurrence:
        moment = from_ms(at) if isinstance(at, int) else as_local(at)
        return Recurrence(dtstart=moment)

    @cached_property
    def parts(self) -> RuleParts | None:
        return parse_parts(self.rule) if self.rule is not None else None

    @cached_property
    def until(self) -> datetime | None:
        """The last instant the rule may give, merging UNTIL and the end date."""
        ends = [end_of_day(self.end_date)] if self.end_date is not None else []
        if self.parts is not None and self.parts.until is not None:
            ends.append(self.parts.until)
        return min(ends) if ends else None

    @cached_property
    def _excluded_days(self) -> frozenset[date]:
        return frozenset(d for d in self.exdates if not isinstance(d, datetime))

    @cached_property
    def _excluded_times(self) -> frozenset[datetime]:
        return frozenset(as_local(d) for d in self.exdates if isinstance(d, datetime))

    @property
    def start_ms(self) -> int:
        return to_ms(self.dtstart)

    def excluded(self, moment: datetime) -> bool:
        return moment.date() in self._excluded_days or moment in self._excluded_times

    def expand(self, after: datetime, before: datetime) -> list[datetime]:
        """Local datetimes of the rule in [after, before], EXDATEs not yet removed."""
        if self.parts is None:
            return [self.dtstart] if after <= self.dtstart <= before else []
        rule = du.rrule(
            dtstart=_fast_forward(self, self.parts, after), until=self.until, **_kwargs(self)
        )
        return list(rule.between(after, before, inc=True))

    def to_ics_rrule(self) -> str | None:
        """The RRULE value for export: UNTIL and the end date merged into one UTC UNTIL."""
        if self.parts is None:
            return None
        parts = [f"{k}={v}" for k, v in self.parts.parts if k != "UNTIL"]
        if self.until is not None:
            parts.append("UNTIL=" + self.until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
        return ";".join(parts)

    def ics_exdates(self) -> list[datetime]:
        """EXDATEs as the local datetimes they remove: calendar clients match times, not days."""
        times = set(self._excluded_times)
        for day in self._excluded_days:
            start = datetime.combine(day, datetime.min.time(), self.dtstart.tzinfo)
            times.update(self.expand(start, end_of_day(day)))
        return sorted(times)


def _kwargs(rec: Recurrence) -> RRuleKwargs:
    assert rec.parts is not None
    kwargs = rec.parts.kwargs()
    # A moved dtstart must not change the day a plain monthly rule falls on.
    if rec.parts.freq == "MONTHLY" and "bymonthday" not in kwargs and "byweekday" not in kwargs:
        kwargs["bymonthday"] = [rec.dtstart.day]
    return kwargs


def _fast_forward(rec: Recurrence, parts: RuleParts, target: datetime) -> datetime:
    """A dtstart in phase with the rule, some periods before target, so expansion skips the past.

    A rule with COUNT must be counted from its true start, so it is never moved.
    """
    start = rec.dtstart
    if parts.count is not None or target <= start:
        return start
    step = parts.interval
    if parts.freq == "DAILY":
        periods = (target.date() - start.date()).days // step - 1
        return start + timedelta(days=periods * step) if periods > 0 else start
    if parts.freq == "WEEKLY":
        weeks = (target.date() - start.date()).days // 7 + 1
        periods = weeks // step - 1
        return start + timedelta(weeks=periods * step) if periods > 0 else start
    months = (target.year - start.year) * 12 + target.month - start.month
    periods = months // step - 1
    if periods <= 0:
        return start
    index = start.year * 12 + start.month - 1 + periods * step
    return start.replace(year=index // 12, month=index % 12 + 1, day=1)


def occurrences(recurrence: Recurrence, start_ms: int, end_ms: int) -> list[int]:
    """Start times (UTC ms) of the recurrence in [start_ms, end_ms), in order."""
    if end_ms <= start_ms:
        return []
    found = recurrence.expand(from_ms(start_ms), from_ms(end_ms))
    out = [to_ms(m) for m in found if not recurrence.excluded(m)]
    return [ms for ms in out if start_ms <= ms < end_ms]


def parse_rrule(
    text: str,
    dtstart_local: datetime,
    *,
    exdates: Iterable[date | datetime] = (),
    end_date: date | None = None,
) -> Recurrence:
    """A checked Recurrence; `dtstart_local` naive is local wall time, aware is converted.

    The stored dtstart is the rule's first occurrence, as RFC 5545 expects of an export.
    """
    parts = parse_parts(text)
    anchor = as_local(dtstart_local).replace(microsecond=0)
    excluded = tuple(as_local(d) if isinstance(d, datetime) else d for d in exdates)
    if parts.count is not None and end_date is not None:
        raise InvalidRecurrence(
            f"the rule has COUNT={parts.count} and an end date {label_date(end_date)}: keep one"
        )
    draft = Recurrence(anchor, ";".join(f"{k}={v}" for k, v in parts.parts), excluded, end_date)
    if draft.until is not None and draft.until < anchor:
        raise InvalidRecurrence(
            f"the schedule ends {label_dt(draft.until)}, before it starts {label_dt(anchor)}: "
            "move the end after the start"
        )
    horizon = anchor + FIRST_SEARCH
    first = next(_bounded(draft, horizon), None)
    if first is None:
        raise InvalidRecurrence(
            f"the rule {draft.rule} starting {label_dt(anchor)} never gives a broadcast: "
            "check BYDAY, BYMONTHDAY, BYHOUR and the end"
        )
    rec = Recurrence(first, draft.rule, excluded, end_date)
    _check_density(rec)
    if all(rec.excluded(m) for m in _bounded(rec, horizon)):
        raise InvalidRecurrence(
            f"every broadcast of the rule {rec.rule} is excluded: remove some excluded dates"
        )
    return rec


def _bounded(rec: Recurrence, horizon: datetime) -> Iterator[datetime]:
    """The rule from its dtstart, cut at horizon so a rule that never matches still stops.

    COUNT is applied by slicing, as dateutil refuses COUNT together with an UNTIL.
    """
    kwargs = _kwargs(rec)
    count = kwargs.pop("count", None)
    until = horizon if rec.until is None else min(rec.until, horizon)
    found = iter(du.rrule(dtstart=rec.dtstart, until=until, **kwargs))
    return found if count is None else islice(found, count)


def _check_density(rec: Recurrence) -> None:
    year = _bounded(rec, rec.dtstart + timedelta(days=365))
    if sum(1 for _ in islice(year, MAX_PER_YEAR + 1)) > MAX_PER_YEAR:
        raise InvalidRecurrence(
            f"the rule {rec.rule} gives more than {MAX_PER_YEAR} broadcasts in a year: raise "
            "INTERVAL or give fewer BYHOUR and BYMINUTE values"
        )
