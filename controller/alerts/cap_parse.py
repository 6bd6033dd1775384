"""CAP 1.2 documents (and CAP 1.1, read as 1.2) read safely into typed values, or refused with
the reason in plain words."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime

import defusedxml
import defusedxml.ElementTree as DET

from controller.alerts.cap import (
    CATEGORIES,
    CERTAINTIES,
    MAX_BYTES,
    MSG_TYPES,
    NS,
    NS_11,
    OLDER_NAMESPACES,
    SCOPES,
    SEVERITIES,
    STATUSES,
    URGENCIES,
    CapAlert,
    CapArea,
    CapCircle,
    CapInfo,
    CapReference,
    CapRefused,
    Ring,
)

_ALERT_ELEMENTS = {
    "identifier",
    "sender",
    "sent",
    "status",
    "msgType",
    "source",
    "scope",
    "restriction",
    "addresses",
    "code",
    "note",
    "references",
    "incidents",
    "info",
}
_INFO_ELEMENTS = {
    "language",
    "category",
    "event",
    "responseType",
    "urgency",
    "severity",
    "certainty",
    "audience",
    "eventCode",
    "effective",
    "onset",
    "expires",
    "senderName",
    "headline",
    "description",
    "instruction",
    "web",
    "contact",
    "parameter",
    "resource",
    "area",
}
_AREA_ELEMENTS = {"areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling"}
# Elements of type xs:string that the schema lets out (minOccurs="0"): an empty one is valid
# CAP and means the same as none (Environment Canada's NAAD feed sends `<references />`, the US
# NWS `<polygon></polygon>`). Required elements, enumerations and times must still have content.
_OPTIONAL_STRINGS = {
    "source",
    "restriction",
    "addresses",
    "code",
    "note",
    "references",
    "incidents",
    "audience",
    "senderName",
    "headline",
    "description",
    "instruction",
    "web",
    "contact",
    "polygon",
    "circle",
}
# CAP 1.1 kept CAP 1.0's "Very Likely" for compatibility and said to read it as "Likely";
# CAP 1.2 dropped it.
_CERTAINTY_11 = {"Very Likely": "Likely"}
# The CAP 1.2 dateTime pattern; "Z" is tolerated although the standard asks for "+00:00",
# because refusing a real warning over a cosmetic time-zone letter would do more harm.
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)")


def parse_cap(data: bytes, *, max_bytes: int = MAX_BYTES) -> CapAlert:
    """Parse with DTDs and entities forbidden, so nothing in the document is ever expanded."""
    if len(data) > max_bytes:
        raise CapRefused(
            "too_large",
            f"the document is {len(data)} bytes; at most {max_bytes} "
            "bytes are accepted for one CAP alert",
        )
    if not data.strip():
        raise CapRefused("invalid", "the document is empty")
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException:
        raise CapRefused("hostile", _hostile_message(data)) from None
    except ET.ParseError as err:
        raise CapRefused(
            "invalid",
            f"the document is not well-formed XML ({err}); it may have been truncated in transfer",
        ) from None
    namespace, _, local = root.tag[1:].partition("}") if root.tag[0] == "{" else ("", "", root.tag)
    notes: list[str] = []
    if local == "alert" and namespace == NS_11:
        notes = _as_cap12(root)
    elif local == "alert" and namespace in OLDER_NAMESPACES:
        raise CapRefused(
            "unsupported",
            f"this is a CAP {OLDER_NAMESPACES[namespace]} document "
            f"({namespace}); only CAP 1.2 ({NS}) and CAP 1.1 ({NS_11}) are accepted",
        )
    elif local != "alert" or namespace != NS:
        raise CapRefused(
            "invalid",
            f"the root element is <{local}> in namespace "
            f"'{namespace or 'none'}', not <alert> in the CAP 1.2 namespace {NS}",
        )
    alert = _alert(root)
    if namespace == NS_11:
        return replace(alert, version="1.1", read_notes=tuple(notes))
    return alert


def _as_cap12(root: ET.Element) -> list[str]:
    """Rewrite a CAP 1.1 tree as CAP 1.2, in place. CAP 1.2 only added to CAP 1.1 (values such
    as responseType "AllClear", the dropped "Very Likely"), so every 1.1 element keeps its
    meaning; what had to change is said in the returned notes."""
    notes = [f"CAP 1.1 document ({NS_11}) read as CAP 1.2"]
    old = "{" + NS_11 + "}"
    for elem in root.iter():
        if elem.tag.startswith(old):
            elem.tag = "{" + NS + "}" + elem.tag[len(old) :]
            if elem.tag.endswith("}certainty"):
                text = " ".join((elem.text or "").split())
                if text in _CERTAINTY_11:
                    elem.text = _CERTAINTY_11[text]
                    notes.append(f"certainty '{text}' read as '{elem.text}', as CAP 1.1 asks")
    return notes


def _hostile_message(data: bytes) -> str:
    # Only to word the refusal: the decision itself was made by defusedxml before any expansion.
    head = data[:8192]
    message = "the document declares a DTD (<!DOCTYPE …>), which CAP 1.2 never needs"
    external = re.search(rb"(?:SYSTEM|PUBLIC)\s+[\"']([^\"']{0,120})[\"']", head)
    if external:
        target = external.group(1).decode("utf-8", "replace")
        message += f"; it points at the external resource '{target}', as XXE attacks do"
    elif b"<!ENTITY" in head:
        message += (
            "; it declares entities that could expand into enormous text, as "
            "'billion laughs' attacks do"
        )
    return message + "; refused without expanding or fetching anything"


def _children(elem: ET.Element, path: str, allowed: set[str]) -> dict[str, list[ET.Element]]:
    groups: dict[str, list[ET.Element]] = {}
    for child in elem:
        namespace, _, local = child.tag[1:].partition("}") if child.tag[0] == "{" else ("", "", "")
        if namespace and namespace != NS:
            continue  # CAP 1.2 lets senders add elements of their own namespaces
        if not namespace:
            raise CapRefused(
                "invalid", f"<{path}> contains <{child.tag}> outside the CAP 1.2 namespace {NS}"
            )
        if local not in allowed:
            raise CapRefused(
                "invalid", f"<{path}> contains <{local}>, which CAP 1.2 does not define there"
            )
        groups.setdefault(local, []).append(child)
    return groups


def _texts(groups: dict[str, list[ET.Element]], name: str, path: str) -> list[str]:
    texts = [" ".join((e.text or "").split()) for e in groups.get(name, [])]
    if name in _OPTIONAL_STRINGS:
        return [text for text in texts if text]
    for text in texts:
        if not text:
            raise CapRefused("invalid", f"<{path}/{name}> is empty")
    return texts


def _one(groups: dict[str, list[ET.Element]], name: str, path: str) -> str | None:
    texts = _texts(groups, name, path)
    if len(texts) > 1:
        raise CapRefused(
            "invalid", f"<{path}> has {len(texts)} <{name}> elements; CAP 1.2 allows one"
        )
    return texts[0] if texts else None


def _required(groups: dict[str, list[ET.Element]], name: str, path: str) -> str:
    text = _one(groups, name, path)
    if text is None:
        raise CapRefused("invalid", f"<{path}> lacks the required <{name}> element")
    return text


def _enum(
    groups: dict[str, list[ET.Element]],
    name: str,
    path: str,
    allowed: tuple[str, ...],
) -> str:
    value = _required(groups, name, path)
    if value not in allowed:
        raise CapRefused(
            "invalid",
            f"<{path}/{name}> is '{value}'; CAP 1.2 allows only "
            f"{', '.join(allowed)} (case matters)",
        )
    return value


def _when(text: str, where: str) -> datetime:
    try:
        if not _DATETIME.fullmatch(text):
            raise ValueError(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise CapRefused(
            "invalid",
            f"<{where}> is '{text}', not a CAP 1.2 date and time such "
            "as 2026-11-28T17:30:00+07:00 (the offset is required)",
        ) from None


def _token(text: str, where: str) -> str:
    # Identifiers and senders are joined into "sender,identifier,sent" references later.
    if re.search(r"[\s,<&]", text):
        raise CapRefused(
            "invalid", f"<{where}> is '{text}'; it must not contain spaces, commas, '<' or '&'"
        )
    return text


def _alert(root: ET.Element) -> CapAlert:
    g = _children(root, "alert", _ALERT_ELEMENTS)
    msg_type = _enum(g, "msgType", "alert", MSG_TYPES)
    references = tuple(_reference(t) for t in (_one(g, "references", "alert") or "").split())
    if msg_type in ("Update", "Cancel") and not references:
        raise CapRefused(
            "invalid",
            f"<alert/msgType> is {msg_type} but <alert/references> is "
            "missing: say which earlier alert (sender,identifier,sent) it changes",
        )
    infos = tuple(_info(e, f"alert/info[{i}]") for i, e in enumerate(g.get("info", []), 1))
    return CapAlert(
        identifier=_token(_required(g, "identifier", "alert"), "alert/identifier"),
        sender=_token(_required(g, "sender", "alert"), "alert/sender"),
        sent=_when(_required(g, "sent", "alert"), "alert/sent"),
        status=_enum(g, "status", "alert", STATUSES),
        msg_type=msg_type,
        scope=_enum(g, "scope", "alert", SCOPES),
        references=references,
        infos=infos,
        source=_one(g, "source", "alert"),
        note=_one(g, "note", "alert"),
    )


def _reference(triple: str) -> CapReference:
    parts = triple.split(",")
    if len(parts) != 3 or not all(parts):
        raise CapRefused(
            "invalid",
            f"<alert/references> contains '{triple}'; each reference "
            "must be sender,identifier,sent with references separated by spaces",
        )
    return CapReference(parts[0], parts[1], _when(parts[2], "alert/references"))


def _info(elem: ET.Element, path: str) -> CapInfo:
    g = _children(elem, path, _INFO_ELEMENTS)
    categories = _texts(g, "category", path)
    if not categories:
        raise CapRefused("invalid", f"<{path}> lacks the required <category> element")
    for category in categories:
        if category not in CATEGORIES:
            raise CapRefused(
                "invalid",
                f"<{path}/category> is '{category}'; CAP 1.2 allows only {', '.join(CATEGORIES)}",
            )
    times = {
        n: _when(t, f"{path}/{n}")
        for n in ("effective", "onset", "expires")
        if (t := _one(g, n, path)) is not None
    }
    return CapInfo(
        language=_one(g, "language", path) or "en-US",
        categories=tuple(categories),
        event=_required(g, "event", path),
        urgency=_enum(g, "urgency", path, URGENCIES),
        severity=_enum(g, "severity", path, SEVERITIES),
        certainty=_enum(g, "certainty", path, CERTAINTIES),
        **times,
        sender_name=_one(g, "senderName", path),
        headline=_one(g, "headline", path),
        description=_one(g, "description", path),
        instruction=_one(g, "instruction", path),
        areas=tuple(_area(e, f"{path}/area[{i}]") for i, e in enumerate(g.get("area", []), 1)),
    )


def _area(elem: ET.Element, path: str) -> CapArea:
    g = _children(elem, path, _AREA_ELEMENTS)
    geocodes = []
    for i, code in enumerate(g.get("geocode", []), 1):
        cg = _children(code, f"{path}/geocode[{i}]", {"valueName", "value"})
        where = f"{path}/geocode[{i}]"
        geocodes.append((_required(cg, "valueName", where), _required(cg, "value", where)))
    return CapArea(
        area_desc=_required(g, "areaDesc", path),
        polygons=tuple(_polygon(t, f"{path}/polygon") for t in _texts(g, "polygon", path)),
        circles=tuple(_circle(t, f"{path}/circle") for t in _texts(g, "circle", path)),
        geocodes=tuple(geocodes),
    )


def _point(pair: str, where: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in pair.split(","))
    except ValueError:
        raise CapRefused(
            "invalid", f"<{where}> contains '{pair}', not a 'latitude,longitude' pair"
        ) from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapRefused(
            "invalid",
            f"<{where}> contains '{pair}', outside latitude -90..90 and longitude -180..180",
        )
    return lat, lon


def _polygon(text: str, where: str) -> Ring:
    ring = tuple(_point(pair, where) for pair in text.split())
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise CapRefused(
            "invalid",
            f"<{where}> has {len(ring)} points; a CAP polygon is a "
            "closed ring of at least 4 points whose last point repeats the first",
        )
    return ring


def _circle(text: str, where: str) -> CapCircle:
    parts = text.split()
    radius = float(parts[1]) if len(parts) == 2 and re.fullmatch(r"\d+(\.\d+)?", parts[1]) else -1
    if radius < 0:
        raise CapRefused(
            "invalid",
            f"<{where}> is '{text}', not 'latitude,longitude radius' with the radius in kilometres",
        )
    return CapCircle(*_point(parts[0], where), radius_km=radius)
