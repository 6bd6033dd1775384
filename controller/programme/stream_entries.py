"""Stream entries of playlists: a station relayed for a while, checked when written and turned
into the `stream` of timeline items when played.

"Relay the provincial station 06:00–06:30 every day" is a playlist with one stream entry of
30 minutes, scheduled daily at 06:00 like anything else. Nodes play the station's URL
directly, or — for a source the field cannot reach (`via_controller`) — the controller's own
copy at `/media/relay/<entry id>.mp3`, which it pulls once and serves to every node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from controller.core.errors import Invalid
from controller.core.models import Announcement, PlaylistItem
from controller.core.station_hosts import StationPolicy
from protocol import MediaRef, StreamFormat, StreamRef
from schedules import Part

if TYPE_CHECKING:
    from controller.programme.playlists import Chime, Entry

STREAM_MS = (1_000, 6 * 3600 * 1000)
LIVE_PREFIX = "live:"


def stream_format(url: str, given: str | None) -> StreamFormat:
    """The format asked for, or the one the URL's name says (.m3u8: HLS, .aac: AAC, else MP3)."""
    if given:
        return StreamFormat(given)
    path = urlparse(url).path.lower()
    if path.endswith(".m3u8"):
        return StreamFormat.hls
    if path.endswith((".aac", ".adts")):
        return StreamFormat.aac
    return StreamFormat.mp3


def check_url(url: str | None, where: str) -> str:
    if not url:
        raise Invalid(f"{where}: give the url of the stream (an http(s) MP3/AAC stream or .m3u8)")
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Invalid(f"{where}: {url[:100]!r} is not an http:// or https:// address")
    if len(url) > 2000 or any(c.isspace() for c in url):
        raise Invalid(f"{where}: the url is too long or contains spaces")
    return url


class HostNotAllowed(Invalid):
    code = "stream_host_not_allowed"


def check_host(url: str, stations: StationPolicy, where: str) -> None:
    """Refuse a station the administrator does not allow, as far as the address says; where it
    really is is checked again, after resolution, whenever the controller connects."""
    why = stations.precheck(urlparse(url).hostname or "")
    if why is not None:
        raise HostNotAllowed(
            f"{where}: {why}: an administrator lists the stations that may be relayed"
        )


def stream_row(
    position: int,
    entry: Entry,
    fallback: Announcement | None,
    chime: Chime,
    stations: StationPolicy,
) -> PlaylistItem:
    """The row of a stream entry; without a fallback the chime is its placeholder media."""
    where = f"entry {position}"
    url = check_url(entry.url, where)
    check_host(url, stations, where)
    lo, hi = STREAM_MS
    if entry.duration_ms is None or not lo <= entry.duration_ms <= hi:
        raise Invalid(f"{where}: a stream plays {lo} to {hi} ms (duration_ms)")
    try:
        fmt = stream_format(url, entry.format)
    except ValueError:
        raise Invalid(f"{where}: format {entry.format!r} is not mp3, aac or hls") from None
    return PlaylistItem(
        playlist_id=0,
        position=position,
        kind="stream",
        announcement_id=fallback.id if fallback is not None else None,
        duration_ms=entry.duration_ms,
        media_sha256=None if fallback is not None else chime.sha256,
        media_size=0 if fallback is not None else chime.size,
        stream_url=url,
        stream_format=fmt.value,
        via_controller=entry.via_controller,
    )


def stream_ref(row: PlaylistItem, media_url: Callable[[str], str], fallback: bool) -> StreamRef:
    """What a node plays for the entry. The controller's own streams are served beside its
    media, so their addresses are made the same way (`/media/relay/…`, `/media/live/…`)."""
    url = row.stream_url or ""
    if url.startswith(LIVE_PREFIX):
        own = media_url(f"live/{url.removeprefix(LIVE_PREFIX)}")
        return StreamRef(url=own, format=StreamFormat.mp3, live=True, auth=True)
    if row.via_controller:
        own = media_url(f"relay/{row.id}")
        return StreamRef(url=own, format=StreamFormat.mp3, auth=True, fallback=fallback)
    fmt = StreamFormat(row.stream_format or "mp3")
    return StreamRef(url=url, format=fmt, fallback=fallback)


def stream_part(
    row: PlaylistItem, fallback: Announcement | None, offset: int, media_url: Callable[[str], str]
) -> Part | None:
    if fallback is not None:
        sha, size, title = fallback.media_sha256, fallback.media_size, ""
    elif row.media_sha256:
        sha, size, title = row.media_sha256, row.media_size, ""
    else:
        return None
    media = MediaRef(url=media_url(sha), sha256=sha, size=size)
    ref = stream_ref(row, media_url, fallback is not None)
    return Part(offset, row.duration_ms, media, title, ref)
