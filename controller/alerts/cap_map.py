"""How a CAP 1.2 alert becomes one of ours: priority, test flag, speech, expiry and targets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from controller.alerts.cap import (
    SEVERITIES,
    CapAlert,
    CapArea,
    CapInfo,
    CapReference,
    CapRefused,
    choose_info,
)
from controller.alerts.cap import local_time as _local

Priority = Literal["emergency", "priority"]
Action = Literal["issue", "update", "cancel"]
Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
# (node_id, area_id, lat, lon): a loudspeaker without coordinates is reached by area only.
NodeLocation = tuple[str, str, float | None, float | None]

_ACTIONS: dict[str, Action] = {"Alert": "issue", "Update": "update", "Cancel": "cancel"}
TITLE_CHARS = 200


def _default_statuses() -> dict[Status, Literal["live", "test", "refuse"]]:
    return {
        "Actual": "live",
        "Test": "test",
        "Exercise": "test",
        "System": "refuse",
        "Draft": "refuse",
    }


def _per_priority(emergency: int, priority: int) -> dict[Priority, int]:
    return {"emergency": emergency, "priority": priority}


class CapMapping(BaseModel):
    """Policy for turning CAP alerts into ours. By default Test and Exercise alerts go out as
    test alerts (nodes play them as tests), while Draft and System alerts are refused: they are
    not meant for the public at all. A status missing from `statuses` is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preferred_languages: tuple[str, ...] = ("vi", "vi-VN")
    statuses: dict[Status, Literal["live", "test", "refuse"]] = Field(
        default_factory=_default_statuses
    )
    # Loudspeakers speak to everyone, so Restricted and Private alerts are not broadcast.
    scopes: frozenset[Literal["Public", "Restricted", "Private"]] = frozenset({"Public"})
    emergency_severities: frozenset[Severity] = frozenset({"Extreme", "Severe"})
    emergency_urgencies: frozenset[Urgency] = frozenset({"Immediate", "Expected"})
    emergency_certainties: frozenset[Certainty] = frozenset({"Observed", "Likely"})
    priority_severities: frozenset[Severity] = frozenset({"Extreme", "Severe", "Moderate"})
    refused_certainties: frozenset[Certainty] = frozenset({"Unlikely"})
    # valueNames whose value already is one of our area ids.
    geocode_identity: frozenset[str] = frozenset({"VN-ADM"})
    # valueName -> {value -> our area id}, e.g. {"EMMA_ID": {"VN123": "thon-dong"}}.
    geocode_areas: dict[str, dict[str, str]] = Field(default_factory=dict)
    repeat: dict[Priority, int] = Field(default_factory=lambda: _per_priority(3, 2))
    volume: dict[Priority, int] = Field(default_factory=lambda: _per_priority(100, 85))
    # CAP lets <expires> out; an alert without it still must not stay on the air forever.
    default_validity: timedelta = timedelta(hours=6)
    max_text_chars: int = Field(default=2000, ge=100)


@dataclass(frozen=True)
class MappedAlert:
    """The alert a CAP document would raise. `area_ids` are the areas to publish to: those named
    by geocode plus those holding a loudspeaker inside a polygon or circle, without areas whose
    parent is already listed. `priority`, `repeat` and `volume` are None only for a cancel."""

    identifier: str
    sender: str
    sent: datetime
    action: Action
    references: tuple[CapReference, ...]
    priority: Priority | None
    test: bool
    language: str | None
    title: str
    text: str
    effective: datetime
    expires: datetime
    area_ids: tuple[str, ...]
    node_ids: tuple[str, ...]
    repeat: int | None
    volume: int | None
    unmatched_geocodes: tuple[tuple[str, str], ...] = ()
    # The document's CAP version ("1.1" read as 1.2) and what reading it as 1.2 changed.
    cap_version: str = "1.2"
    read_notes: tuple[str, ...] = ()
    # Only when mapped for a check: why this alert would be refused now (expired, no targets).
    refusals: tuple[CapRefused, ...] = ()

    @property
    def referenced_identifiers(self) -> tuple[str, ...]:
        return tuple(ref.identifier for ref in self.references)


def map_alert(
    alert: CapAlert,
    mapping: CapMapping | None = None,
    *,
    areas: Mapping[str, str | None],
    nodes: Sequence[NodeLocation],
    now: datetime,
    checking: bool = False,
) -> MappedAlert:
    """`areas` maps each of our area ids to its parent (None at the root). When `checking`,
    an alert that has expired or reaches none of our areas is still mapped, with the reasons it
    would be refused now in `refusals`, so a check can say what it would have raised."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    mapping = mapping or CapMapping()
    action = _ACTIONS.get(alert.msg_type)
    if action is None:
        raise CapRefused(
            "not_actionable",
            f"<msgType> is {alert.msg_type}: an acknowledgement "
            "or error report between agencies, nothing to broadcast",
        )
    handling = mapping.statuses.get(cast(Status, alert.status), "refuse")
    if handling == "refuse":
        raise CapRefused(
            "not_actionable",
            f"<status> is {alert.status}: such alerts are not for the public and are not broadcast",
        )
    if alert.scope not in mapping.scopes:
        raise CapRefused(
            "not_actionable",
            f"<scope> is {alert.scope}: loudspeakers are heard "
            "by everyone, so only " + ", ".join(sorted(mapping.scopes)) + " alerts are broadcast",
        )
    info = choose_info(alert, mapping.preferred_languages)
    if info is None and action != "cancel":
        raise CapRefused(
            "not_actionable",
            f"the {alert.msg_type} has no <info> block, so there is nothing to announce",
        )
    expires = (info.expires if info and info.expires else None) or (
        alert.sent + mapping.default_validity
    )
    refusals: list[CapRefused] = []
    if expires <= now:
        refusals.append(
            CapRefused(
                "expired",
                f"the alert expired at {_local(expires)} (Vietnam time), "
                f"before it was checked at {_local(now)}",
            )
        )
        if not checking:
            raise refusals[-1]
    priority = None if action == "cancel" or info is None else _priority(info, mapping)
    cap_areas = _cap_areas(alert, info)
    area_ids, node_ids, unmatched = _targets(cap_areas, mapping, areas, nodes)
    if not area_ids and action != "cancel":
        refusals.append(CapRefused("no_targets", _no_targets_message(cap_areas, unmatched)))
        if not checking:
            raise refusals[-1]
    title = (info.headline or info.event) if info else "Hủy cảnh báo"
    return MappedAlert(
        identifier=alert.identifier,
        sender=alert.sender,
        sent=alert.sent,
        action=action,
        references=alert.references,
        priority=priority,
        test=handling == "test",
        language=info.language if info else None,
        title=_clip(title, TITLE_CHARS),
        text=speech_text(info, mapping.max_text_chars) if info else "",
        effective=(info.effective if info and info.effective else alert.sent),
        expires=expires,
        area_ids=area_ids,
        node_ids=node_ids,
        repeat=mapping.repeat[priority] if priority else None,
        volume=mapping.volume[priority] if priority else None,
        unmatched_geocodes=unmatched,
        cap_version=alert.version,
        read_notes=alert.read_notes,
        refusals=tuple(refusals),
    )


def _priority(info: CapInfo, mapping: CapMapping) -> Priority:
    if info.certainty in mapping.refused_certainties:
        raise CapRefused(
            "not_actionable",
            f"<certainty> is {info.certainty}: the event is not "
            "expected to happen, so it is not broadcast",
        )
    if (
        info.severity in mapping.emergency_severities
        and info.urgency in mapping.emergency_urgencies
        and info.certainty in mapping.emergency_certainties
    ):
        return "emergency"
    if info.severity in mapping.priority_severities:
        return "priority"
    raise CapRefused(
        "not_actionable",
        f"<severity> is {info.severity} (urgency "
        f"{info.urgency}, certainty {info.certainty}): too slight to interrupt "
        "the loudspeakers; only "
        + ", ".join(s for s in SEVERITIES if s in mapping.priority_severities)
        + " alerts are broadcast",
    )


def speech_text(info: CapInfo, limit: int = 2000) -> str:
    """Headline (or event), description and instruction as sentences, cut at a word if long."""
    sentences = []
    for part in (info.headline or info.event, info.description, info.instruction):
        text = " ".join((part or "").split())
        if text:
            sentences.append(text if text[-1] in ".!?…:;" else text + ".")
    return _clip(" ".join(sentences), limit)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary, unless that would throw away half the text
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _cap_areas(alert: CapAlert, info: CapInfo | None) -> tuple[CapArea, ...]:
    # The chosen language's areas; if it has none, those of every block (translations
    # sometimes carry the areas only once).
    if info is not None and info.areas:
        return info.areas
    return tuple(area for each in alert.infos for area in each.areas)


def _lineage(area_id: str, areas: Mapping[str, str | None]) -> Iterator[str]:
    seen: set[str] = set()
    current: str | None = area_id
    while current is not None and current not in seen:  # a cycle in bad data must not hang
        seen.add(current)
        yield current
        current = areas.get(current)


def _targets(
    cap_areas: Sequence[CapArea],
    mapping: CapMapping,
    areas: Mapping[str, str | None],
    nodes: Sequence[NodeLocation],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    named: list[str] = []
    unmatched: list[tuple[str, str]] = []
    for cap_area in cap_areas:
        for name, value in cap_area.geocodes:
            area_id = mapping.geocode_areas.get(name, {}).get(value)
            if area_id is None and name in mapping.geocode_identity:
                area_id = value
            if area_id is not None and area_id in areas:
                named.append(area_id)
            else:
                unmatched.append((name, value))
    named_set = set(named)
    node_ids: list[str] = []
    shape_areas: list[str] = []
    for node_id, area_id, lat, lon in nodes:
        by_name = any(a in named_set for a in _lineage(area_id, areas))
        by_shape = (
            lat is not None and lon is not None and any(a.covers(lat, lon) for a in cap_areas)
        )
        if by_name or by_shape:
            node_ids.append(node_id)
        if by_shape and not by_name:
            shape_areas.append(area_id)
    chosen = list(dict.fromkeys(named + shape_areas))
    # Nodes listen to their ancestors' areas too, so a child of a chosen area is redundant.
    covering = [a for a in chosen if not any(p in chosen for p in list(_lineage(a, areas))[1:])]
    return tuple(covering), tuple(dict.fromkeys(node_ids)), tuple(unmatched)


def _no_targets_message(
    cap_areas: Sequence[CapArea],
    unmatched: Sequence[tuple[str, str]],
) -> str:
    if not cap_areas:
        return "the alert has no <area>, so it cannot be aimed at any loudspeaker"
    names = ", ".join(f"'{a.area_desc}'" for a in cap_areas)
    parts = [f"none of the alert's areas ({names}) covers one of our areas or loudspeakers"]
    if unmatched:
        codes = ", ".join(f"{n}={v}" for n, v in unmatched)
        parts.append(f"geocodes {codes} are not mapped to any of our areas")
    shapes = sum(len(a.polygons) + len(a.circles) for a in cap_areas)
    if shapes:
        parts.append(f"no loudspeaker lies inside its {shapes} polygon(s)/circle(s)")
    return "; ".join(parts)
