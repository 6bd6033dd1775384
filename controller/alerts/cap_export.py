"""What leaves the controller about CAP: our alerts as CAP 1.2 documents, and check reports."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.alerts.cap import MAX_BYTES, NS, VIETNAM, CapReference, CapRefused, local_time
from controller.alerts.cap_map import CapMapping, MappedAlert, NodeLocation, map_alert
from controller.alerts.cap_parse import parse_cap
from controller.core.errors import Invalid

# The geocode under which our own area ids are published, read back by CapMapping's default.
AREA_GEOCODE = "VN-ADM"
_PRIORITY_VI = {"emergency": "khẩn cấp (emergency)", "priority": "ưu tiên (priority)"}


class CapExportError(Invalid):
    """One of our alerts cannot be written as CAP 1.2; the message names the field."""


def export_cap(alert: Mapping[str, Any]) -> bytes:
    """A CAP 1.2 document for one of our alerts. Keys: id, sender, sent, event, severity,
    urgency, certainty (required); status ("Actual"/"Test"), msg_type, references (CapReference,
    (sender, identifier, sent) or "sender,identifier,sent"), headline, description,
    instruction, expires, effective, onset, sender_name, category, language ("vi-VN"),
    areas [(area_id, name)], polygons [[(lat, lon), …]], circles [(lat, lon, radius_km)],
    area_desc (names the polygon/circle block). Checked by parse_cap before it is returned."""
    root = ET.Element("alert", xmlns=NS)
    _put(root, "identifier", _need(alert, "id"))
    _put(root, "sender", _need(alert, "sender"))
    _put(root, "sent", _stamp(_need(alert, "sent"), "sent"))
    _put(root, "status", alert.get("status") or "Actual")
    _put(root, "msgType", alert.get("msg_type") or "Alert")
    _put(root, "scope", alert.get("scope") or "Public")
    refs = " ".join(_reference(r) for r in alert.get("references") or ())
    if refs:
        _put(root, "references", refs)
    info = ET.SubElement(root, "info")
    _put(info, "language", alert.get("language") or "vi-VN")
    _put(info, "category", alert.get("category") or "Safety")
    _put(info, "event", _need(alert, "event"))
    for key in ("urgency", "severity", "certainty"):
        _put(info, key, _need(alert, key))
    for key in ("effective", "onset", "expires"):
        if alert.get(key) is not None:
            _put(info, key, _stamp(alert[key], key))
    for key, tag in (
        ("sender_name", "senderName"),
        ("headline", "headline"),
        ("description", "description"),
        ("instruction", "instruction"),
    ):
        if alert.get(key):
            _put(info, tag, str(alert[key]))
    for area_id, name in alert.get("areas") or ():
        area = ET.SubElement(info, "area")
        _put(area, "areaDesc", name)
        geocode = ET.SubElement(area, "geocode")
        _put(geocode, "valueName", AREA_GEOCODE)
        _put(geocode, "value", area_id)
    polygons, circles = alert.get("polygons") or (), alert.get("circles") or ()
    if polygons or circles:
        area = ET.SubElement(info, "area")
        _put(area, "areaDesc", alert.get("area_desc") or "Vùng cảnh báo")
        for ring in polygons:
            _put(area, "polygon", _ring(ring))
        for lat, lon, radius in circles:
            _put(area, "circle", f"{_num(lat)},{_num(lon)} {_num(radius)}")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    try:
        parse_cap(document)
    except CapRefused as err:
        raise CapExportError(
            f"alert {alert.get('id')!r} would not be valid CAP 1.2: {err.message}"
        ) from None
    return document


def _put(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text  # ElementTree escapes &, < and > itself


def _need(alert: Mapping[str, Any], key: str) -> Any:
    value = alert.get(key)
    if value is None or value == "":
        raise CapExportError(f"alert {alert.get('id')!r} has no {key}, which CAP 1.2 requires")
    return value


def _stamp(when: Any, key: str) -> str:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise CapExportError(f"{key} must be a timezone-aware datetime, not {when!r}")
    return when.astimezone(VIETNAM).isoformat(timespec="seconds")


def _reference(ref: CapReference | Sequence[Any] | str) -> str:
    if isinstance(ref, str):
        return ref
    parts = (ref.sender, ref.identifier, ref.sent) if isinstance(ref, CapReference) else tuple(ref)
    sender, identifier, sent = parts
    stamp = _stamp(sent, "references") if isinstance(sent, datetime) else str(sent)
    return f"{sender},{identifier},{stamp}"


def _num(value: float) -> str:
    # Six decimals of a degree is about ten centimetres; more only adds noise.
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def _ring(points: Iterable[Sequence[float]]) -> str:
    ring = [(float(lat), float(lon)) for lat, lon in points]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return " ".join(f"{_num(lat)},{_num(lon)}" for lat, lon in ring)


@dataclass(frozen=True)
class CheckResult:
    """For one file: the alert it would raise, or why it is refused. An alert refused only for
    now (expired, or aimed at none of our areas) has both: what it would have raised, and why
    it would be refused."""

    path: str
    alert: MappedAlert | None = None
    refused: CapRefused | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None


def check_file(
    path: str | os.PathLike[str],
    *,
    areas: Mapping[str, str | None],
    nodes: Sequence[NodeLocation],
    mapping: CapMapping | None = None,
    now: datetime | None = None,
) -> CheckResult:
    """Read, parse and map one CAP file as an incoming alert would be, without acting on it."""
    where = os.fspath(path)
    try:
        size = os.stat(path).st_size
        # Never read a huge file into memory only to refuse it.
        data = Path(path).read_bytes() if size <= MAX_BYTES else b""
    except OSError as err:
        return CheckResult(
            where, refused=CapRefused("unreadable", f"the file cannot be read: {err.strerror}")
        )
    try:
        if size > MAX_BYTES:
            raise CapRefused(
                "too_large",
                f"the file is {size} bytes; at most {MAX_BYTES} "
                "bytes are accepted for one CAP alert",
            )
        mapped = map_alert(
            parse_cap(data),
            mapping,
            areas=areas,
            nodes=nodes,
            now=now or datetime.now(VIETNAM),
            checking=True,
        )
    except CapRefused as err:
        return CheckResult(where, refused=err)
    return CheckResult(where, alert=mapped, refused=mapped.refusals[0] if mapped.refusals else None)


def format_result(result: CheckResult) -> str:
    """One line per file, Vietnamese first with English in brackets."""
    name = Path(result.path).name
    alert = result.alert
    if alert is None:
        refused = result.refused
        why = f"{refused.reason}: {refused.message}" if refused else "unknown"
        return f"✘ {name}: bị từ chối (refused) — {why}"
    line = _describe(alert)
    if alert.cap_version != "1.2":
        line += f"; CAP {alert.cap_version} (đọc như CAP 1.2, read as CAP 1.2)"
        line += "".join(f"; {note}" for note in alert.read_notes[1:])
    if alert.refusals:
        why = "; ".join(f"{r.reason}: {r.message}" for r in alert.refusals)
        return (
            f"✘ {name}: bị từ chối lúc này (refused now) — {why}\n  sẽ phát (would raise): {line}"
        )
    return f"✔ {name}: {line}"


def _describe(alert: MappedAlert) -> str:
    refs = ", ".join(alert.referenced_identifiers)
    head = "[THỬ NGHIỆM (TEST)] " if alert.test else ""
    if alert.action == "cancel":
        head += f"hủy (cancel) {refs}"
    else:
        if alert.action == "update":
            head += f"cập nhật (update) {refs}, "
        head += _PRIORITY_VI[alert.priority or "priority"]
    parts = [head]
    if alert.area_ids:
        parts[0] += f", {len(alert.area_ids)} khu vực: {', '.join(alert.area_ids)}"
    parts.append(f"hết hạn {local_time(alert.expires)}")
    if alert.language:
        parts.append(f"ngôn ngữ (language) {alert.language}")
    if alert.action != "cancel":  # a cancel reaches whoever received the alerts it cancels
        parts.append(f"{len(alert.node_ids)} loa (loudspeakers)")
        parts.append(f"«{alert.title}»")
    return "; ".join(parts)
