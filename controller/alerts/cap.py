"""CAP 1.2 (OASIS Common Alerting Protocol) alerts as typed values, and where they apply."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from controller.core.errors import Invalid

NS = "urn:oasis:names:tc:emergency:cap:1.2"
NS_11 = "urn:oasis:names:tc:emergency:cap:1.1"
OLDER_NAMESPACES = {
    NS_11: "1.1",
    "urn:oasis:names:tc:emergency:cap:1.0": "1.0",
    "http://www.incident.com/cap/1.0": "1.0",
}
MAX_BYTES = 256 * 1024
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

RefusalReason = Literal[
    "hostile",
    "invalid",
    "unsupported",
    "too_large",
    "unreadable",
    "not_actionable",
    "expired",
    "no_targets",
]
Ring = tuple[tuple[float, float], ...]


class CapRefused(Invalid):
    """A CAP document we will not act on; `reason` is a short code, `message` says why."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.message = message


@dataclass(frozen=True)
class CapCircle:
    lat: float
    lon: float
    radius_km: float

    def covers(self, lat: float, lon: float) -> bool:
        return distance_km(self.lat, self.lon, lat, lon) <= self.radius_km


@dataclass(frozen=True)
class CapArea:
    area_desc: str
    polygons: tuple[Ring, ...] = ()
    circles: tuple[CapCircle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)

    def covers(self, lat: float, lon: float) -> bool:
        """Whether a point lies inside any polygon or circle; geocodes are matched elsewhere."""
        return any(in_ring(lat, lon, ring) for ring in self.polygons) or any(
            circle.covers(lat, lon) for circle in self.circles
        )


@dataclass(frozen=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapReference:
    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[CapReference, ...] = ()
    infos: tuple[CapInfo, ...] = ()
    source: str | None = None
    note: str | None = None
    # "1.1" for a CAP 1.1 document read as CAP 1.2; read_notes say what that changed.
    version: str = "1.2"
    read_notes: tuple[str, ...] = ()


def choose_info(alert: CapAlert, preferred: Sequence[str] = ("vi", "vi-VN")) -> CapInfo | None:
    """The first <info> in a preferred language (compared without case, "vi" also matching
    any "vi-XX"), else the first <info>; None when the alert has none, as Cancels often do."""
    wanted = [p.lower() for p in preferred]
    for want in wanted:
        for info in alert.infos:
            lang = info.language.lower()
            if lang == want or ("-" not in want and lang.split("-")[0] == want):
                return info
    return alert.infos[0] if alert.infos else None


def local_time(when: datetime) -> str:
    """How an officer reads a time: Vietnam's clock, hour first, day/month/year."""
    return when.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_ring(lat: float, lon: float, ring: Ring, tolerance: float = 1e-9) -> bool:
    """Ray casting over a closed ring. A point on an edge or vertex counts as inside: a
    loudspeaker on the boundary of a warning area should rather sound than stay silent."""
    if ring and ring[0] != ring[-1]:
        ring = (*ring, ring[0])  # an open ring still encloses its area: close it
    inside = False
    for (lat1, lon1), (lat2, lon2) in pairwise(ring):
        if _on_segment(lat, lon, lat1, lon1, lat2, lon2, tolerance):
            return True
        # The half-open test (one end strictly above, one not) counts a vertex crossing once.
        if (lat1 > lat) != (lat2 > lat):
            crossing_lon = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing_lon:
                inside = not inside
    return inside


def _on_segment(
    lat: float, lon: float, lat1: float, lon1: float, lat2: float, lon2: float, tolerance: float
) -> bool:
    cross = (lat2 - lat1) * (lon - lon1) - (lon2 - lon1) * (lat - lat1)
    if abs(cross) > tolerance:
        return False
    return (
        min(lat1, lat2) - tolerance <= lat <= max(lat1, lat2) + tolerance
        and min(lon1, lon2) - tolerance <= lon <= max(lon1, lon2) + tolerance
    )
