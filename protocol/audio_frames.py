"""Frames of MPEG audio (MP3) and ADTS (AAC) streams, as both ends count and cut them.

A stream's bytes arrive in chunks that ignore frame boundaries; `FrameReader` keeps the tail of
a frame until the rest arrives, skips an ID3v2 tag and resynchronises after garbage, so a node
can count what it decodes and the controller can cut a stream between frames.
"""

from __future__ import annotations

from dataclasses import dataclass

# kb/s by [MPEG-1?][layer][index]; index 0 ("free") and 15 are refused.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
MAX_FRAME = 8192


@dataclass(frozen=True)
class Frame:
    """One frame: its length in bytes and how much audio it carries."""

    length: int
    samples: int
    sample_rate: int
    bitrate_kbps: int  # 0 for ADTS, whose header does not say

    @property
    def duration_ms(self) -> float:
        return 1000 * self.samples / self.sample_rate


def parse_header(head: bytes) -> Frame | None:
    """The frame whose header starts `head` (at least 7 bytes), or None if it is not one."""
    if len(head) < 7 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer_bits = (head[1] >> 1) & 3
    if layer_bits == 0:
        return _adts(head)
    version = (head[1] >> 3) & 3
    if version == 1 or version not in _MPEG_RATES:
        return None
    layer = 4 - layer_bits
    rate_index = (head[2] >> 2) & 3
    bitrate_index = head[2] >> 4
    if rate_index == 3 or bitrate_index in (0, 15):
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index]
    sample_rate = _MPEG_RATES[version][rate_index]
    padding = (head[2] >> 1) & 1
    if layer == 1:
        return Frame((12 * bitrate * 1000 // sample_rate + padding) * 4, 384, sample_rate, bitrate)
    samples = 1152 if layer == 2 or mpeg1 else 576
    length = samples // 8 * bitrate * 1000 // sample_rate + padding
    return Frame(length, samples, sample_rate, bitrate)


def _adts(head: bytes) -> Frame | None:
    if head[1] & 0xF0 != 0xF0:
        return None
    rate_index = (head[2] >> 2) & 0xF
    if rate_index >= len(_ADTS_RATES):
        return None
    length = ((head[3] & 3) << 11) | (head[4] << 3) | (head[5] >> 5)
    blocks = (head[6] & 3) + 1
    if length < 7:
        return None
    return Frame(length, 1024 * blocks, _ADTS_RATES[rate_index], 0)


class FrameReader:
    """Feed chunks; complete frames come out. Counts what it skipped as garbage."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.samples = 0
        self.audio_ms = 0.0
        self.garbage = 0
        self.sample_rate = 0
        self.bitrate_kbps = 0
        self._id3_checked = False

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by `data`, in order (their bytes, header included)."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        if not self._id3_checked:
            if len(buf) < 10:
                return out
            self._id3_checked = True
            if buf[:3] == b"ID3":
                # Tag size is "synchsafe": 7 bits per byte.
                size = 10 + (buf[6] << 21 | buf[7] << 14 | buf[8] << 7 | buf[9])
                if len(buf) < size:
                    self._id3_checked = False
                    return out
                pos = size
        while len(buf) - pos >= 7:
            frame = parse_header(bytes(buf[pos : pos + 7]))
            if frame is None or frame.length > MAX_FRAME:
                pos += 1
                self.garbage += 1
                continue
            if len(buf) - pos < frame.length:
                break
            out.append(bytes(buf[pos : pos + frame.length]))
            pos += frame.length
            self.frames += 1
            self.samples += frame.samples
            self.audio_ms += frame.duration_ms
            self.sample_rate = frame.sample_rate
            self.bitrate_kbps = frame.bitrate_kbps or self.bitrate_kbps
        del buf[:pos]
        return out
