"""An HLS listener: follows a live playlist and hands on the audio of each new segment in order.

Only what a radio relay needs: a master playlist is followed to its first variant; segments are
MPEG-TS (the audio stream is taken out of its PES packets) or packed audio (MP3 or AAC with an
ID3 tag in front). A playlist that stops growing is a stall, `#EXT-X-ENDLIST` is the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

LIVE_EDGE_SEGMENTS = 3  # a listener joins this many segments before the live end
MAX_PLAYLIST_BYTES = 256 * 1024
MAX_SEGMENT_BYTES = 8 * 1024 * 1024


class HlsError(Exception):
    """The playlist or a segment cannot be used; the message says which and why."""


class HlsStalled(HlsError):
    """The playlist has not grown for longer than its segments last."""


@dataclass
class MediaPlaylist:
    target_s: float = 6.0
    first_seq: int = 0
    segments: list[str] = field(default_factory=list)
    ended: bool = False
    variant: str | None = None  # set when this was a master playlist


def parse_playlist(text: str, base: str) -> MediaPlaylist:
    if not text.startswith("#EXTM3U"):
        raise HlsError("not an HLS playlist (no #EXTM3U)")
    out = MediaPlaylist()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF") and i + 1 < len(lines):
            out.variant = urljoin(base, lines[i + 1])
            return out
        if line.startswith("#EXT-X-TARGETDURATION:"):
            out.target_s = max(0.5, float(line.split(":", 1)[1]))
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            out.first_seq = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-ENDLIST"):
            out.ended = True
        elif not line.startswith("#"):
            out.segments.append(urljoin(base, line))
    return out


class TsDemux:
    """The bytes of the first audio stream found in MPEG-TS packets."""

    def __init__(self) -> None:
        self.pid: int | None = None

    def audio(self, data: bytes) -> bytes:
        out = bytearray()
        for pos in range(0, len(data) - 187, 188):
            packet = data[pos : pos + 188]
            if packet[0] != 0x47:
                continue
            pid = ((packet[1] & 0x1F) << 8) | packet[2]
            start = bool(packet[1] & 0x40)
            control = (packet[3] >> 4) & 3
            if not control & 1:
                continue  # no payload
            body = packet[5 + packet[4] :] if control == 3 else packet[4:]
            if start and body[:3] == b"\x00\x00\x01":
                stream_id = body[3]
                if self.pid is None and 0xC0 <= stream_id <= 0xDF:
                    self.pid = pid
                if pid == self.pid:
                    out += body[9 + body[8] :]
            elif pid == self.pid:
                out += body
        return bytes(out)


def strip_id3(data: bytes) -> bytes:
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9])
        return data[size:]
    return data


async def _get(http: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int) -> bytes:
    async with http.stream("GET", url, headers=headers, follow_redirects=True) as resp:
        if resp.status_code != 200:
            raise HlsError(f"HTTP {resp.status_code} from {url[:200]}")
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise HlsError(f"{url[:200]} is larger than {limit} bytes")
        return bytes(body)


async def follow(
    http: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[bytes]:
    """The audio bytes of each new segment, from near the live edge until the playlist ends.

    Raises HlsStalled when nothing new appears for three target durations, HlsError on a bad
    playlist and httpx errors on the network; returns at `#EXT-X-ENDLIST`.
    """
    playlist_url, next_seq = url, None
    demux = TsDemux()
    idle_s = 0.0
    loop = asyncio.get_running_loop()
    while True:
        text = (await _get(http, playlist_url, headers, MAX_PLAYLIST_BYTES)).decode(
            errors="replace"
        )
        playlist = parse_playlist(text, playlist_url)
        if playlist.variant is not None:
            playlist_url = playlist.variant
            continue
        last_seq = playlist.first_seq + len(playlist.segments)
        if next_seq is None:
            next_seq = max(playlist.first_seq, last_seq - LIVE_EDGE_SEGMENTS)
        fresh = False
        for n, segment_url in enumerate(playlist.segments):
            if playlist.first_seq + n < next_seq:
                continue
            data = await _get(http, segment_url, headers, MAX_SEGMENT_BYTES)
            next_seq = playlist.first_seq + n + 1
            fresh = True
            yield demux.audio(data) if data[:1] == b"\x47" else strip_id3(data)
        if playlist.ended and next_seq >= last_seq:
            return
        started = loop.time()
        await asyncio.sleep(playlist.target_s / 2)
        idle_s = 0.0 if fresh else idle_s + (loop.time() - started)
        if idle_s > 3 * playlist.target_s:
            raise HlsStalled(f"the playlist has not grown for {idle_s:.0f} s")
