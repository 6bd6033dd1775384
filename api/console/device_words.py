"""A device's alarms and events in the reader's language.

The controller records alarm details and event types for programs and logs (English, UTC,
codes: "offline since 2026-12-05 06:20:15 UTC (lost)", "speaker_fault raised"); the console
reads them back into words: each detail the alarm rules write (controller/health/
alarm_rules.py) has its pattern here, times become Viet Nam time and decimals take the
language's separator. A detail no pattern knows is not shown as English words: the kind of
alarm already says what it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.console.i18n import Words
from api.console.pages import LOCAL

Reader = Callable[[re.Match[str], Words], str]


def number(value: float | str, lang: str, digits: int | None = None) -> str:
    """A decimal as the language writes it: 36,5 in Vietnamese, 36.5 in English."""
    x = float(value)
    sign = "+" if str(value).startswith("+") else ""  # an offset keeps its sign
    shown = sign + (f"{x:.{digits}f}" if digits is not None else f"{x:g}")
    return shown.replace(".", ",") if lang == "vi" else shown


def utc_text(text: str) -> str:
    """A 'YYYY-mm-dd HH:MM:SS' UTC time as Viet Nam dd/mm/yyyy HH:MM."""
    when = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return when.astimezone(LOCAL).strftime("%d/%m/%Y %H:%M")


def _percent(value: str, t: Words) -> str:
    return t("health.unknown") if value == "?" else f"{value} %"


# (pattern of the controller's detail, its reading) for each kind of alarm.
ALARM_DETAILS: dict[str, list[tuple[re.Pattern[str], Reader]]] = {
    "offline": [
        (
            re.compile(r"offline since (\S+ \S+) UTC \((\w+)\)"),
            lambda m, t: t("alarm_detail.offline", when=utc_text(m[1]), state=t(f"status.{m[2]}")),
        )
    ],
    "flapping": [
        (
            re.compile(r"(\d+)\+ state changes within (\d+) s"),
            lambda m, t: t("alarm_detail.flapping", n=m[1], s=m[2]),
        )
    ],
    "speaker_fault": [
        (re.compile(r"speaker check failed"), lambda m, t: t("alarm_detail.speaker_fault"))
    ],
    "amplifier_fault": [
        (re.compile(r"amplifier check failed"), lambda m, t: t("alarm_detail.amplifier_fault"))
    ],
    "mains_lost": [
        (
            re.compile(r"on battery \((\S+) %\)"),
            lambda m, t: t("alarm_detail.mains_lost", pct=_percent(m[1], t)),
        )
    ],
    "low_battery": [
        (re.compile(r"battery at (\S+) %"), lambda m, t: t("alarm_detail.low_battery", pct=m[1]))
    ],
    "over_temperature": [
        (
            re.compile(r"(-?[\d.]+) °C \(limit (-?[\d.]+) °C\)"),
            lambda m, t: t(
                "alarm_detail.over_temperature",
                c=number(m[1], t.lang, 1),
                limit=number(m[2], t.lang),
            ),
        )
    ],
    "storage_low": [
        (re.compile(r"(\d+) MB free"), lambda m, t: t("alarm_detail.storage_low", mb=m[1]))
    ],
    "clock_offset": [
        (
            re.compile(r"([+-][\d.]+) ms from the controller's clock \((.+); limit ([\d.]+) ms\)"),
            lambda m, t: t(
                "alarm_detail.clock_controller",
                ms=number(m[1], t.lang),
                method=t("health.method_" + m[2].replace(" ", "_")),
                limit=m[3],
            ),
        ),
        (
            re.compile(r"([+-][\d.]+) ms from true time by (.+) \(limit ([\d.]+) ms\)"),
            lambda m, t: t("alarm_detail.clock_daemon", ms=number(m[1], t.lang, 1), limit=m[3]),
        ),
    ],
    "dead_air": [
        (
            re.compile(r"item (\S+) due (\S+ \S+) UTC not played \((\w+)"),
            lambda m, t: t("alarm_detail.dead_air", when=utc_text(m[2]), state=t(f"state.{m[3]}")),
        )
    ],
    "media_failing": [
        (
            re.compile(r"(\d+) failed downloads in (\d+) s"),
            lambda m, t: t("alarm_detail.media_failing", n=m[1], s=m[2]),
        )
    ],
    "firmware_outdated": [
        (
            re.compile(r"runs (\S*), latest is (\S+)"),
            lambda m, t: t("alarm_detail.firmware_outdated", runs=m[1] or "—", latest=m[2]),
        )
    ],
}
CLEAR_DETAILS = {"node retired": "alarm_detail.retired"}


def reading(table: list[tuple[re.Pattern[str], Reader]], text: str | None, t: Words) -> str:
    """The text in words by the first pattern of `table` found in it; "" when none is."""
    for pattern, read in table:
        found = pattern.search(text or "")
        if found:
            return read(found, t)
    return ""


def alarm_detail(kind: str, detail: str, t: Words) -> str:
    """An alarm's detail in words; "" when the controller's text is not one the rules write."""
    if words := reading(ALARM_DETAILS.get(kind, []), detail, t):
        return words
    key = CLEAR_DETAILS.get(detail or "")
    return t(key) if key else ""


# Why an item ended as it did, as a node reports it (docs/protocol.md, "Playing"), and its
# reading; a reason no pattern knows is not shown (the result's own word says what happened).
PLAY_DETAILS: list[tuple[re.Pattern[str], Reader]] = [
    (re.compile(r"^live broadcast ended$"), lambda m, t: t("log.why_live_ended")),
    (re.compile(r"^media not ready$"), lambda m, t: t("log.why_no_media")),
    (
        re.compile(r"^late by (\d+) ms$"),
        lambda m, t: t("log.why_late", s=number(int(m[1]) / 1000, t.lang, 1)),
    ),
    (re.compile(r"^removed in timeline v\d+$"), lambda m, t: t("log.why_removed")),
    (re.compile(r"^pre-?empted by alert\b"), lambda m, t: t("log.why_alert")),
    (re.compile(r"^pre-?empted by "), lambda m, t: t("log.why_other_item")),
    (re.compile(r"^stop command$"), lambda m, t: t("log.why_stop")),
]


def play_detail(detail: str | None, t: Words) -> str:
    """Why an item ended as it did, in words; "" for a reason no pattern knows."""
    return reading(PLAY_DETAILS, detail, t)


def event_words(event: dict[str, Any], t: Words) -> tuple[str, str]:
    """A node event as (what happened, detail) in words."""
    source, kind, detail = event["source"], str(event["type"]), str(event.get("detail") or "")
    if source == "state":
        state, _, flapping = kind.partition(" ")
        what = t(f"status.{state}") + (f" ({t('status.flapping')})" if flapping else "")
        moved = re.match(r"(\w+) → (\w+): (\w+)", detail)
        if not moved:
            return what, ""
        reason = t(f"event.reason_{moved[3]}") if f"event.reason_{moved[3]}" in t else ""
        text = f"{t(f'status.{moved[1]}')} → {t(f'status.{moved[2]}')}"
        return what, f"{text}: {reason}" if reason else text
    if source == "alarm":
        alarm, _, step = kind.rpartition(" ")
        what = f"{t(f'alarm.{alarm}')} — {t(f'event.alarm_{step}')}"
        if step == "raised":
            return what, alarm_detail(alarm, detail, t)
        if step == "cleared":
            return what, alarm_detail(alarm, detail, t)
        return what, detail  # acknowledged: "who: note", a person's own words
    key = f"event.{kind}"
    return (t(key) if key in t else t("event.other")), ""
