"""The node's sound output: the interface both players fill, and the simulated one.

`Playback`, the timeline, alerts and streams are the same code on a simulated node and on a
real one; only the `Player` at the end differs. The simulated player has no loudspeaker: a
recording "sounds" for as long as its item lasts (the caller times it) and a stream's frames
are counted, not decoded. `SoundCardPlayer` (firmware_sim/sound_card.py) plays through a sound
card; `firmware_sim.player_choice.make_player` picks one from the node's configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from protocol import StreamFormat

if TYPE_CHECKING:
    pass

Volume = Callable[[], int]  # the level to play at now, 0-100 (alerts may override it)


class Sound(Protocol):
    """Something sounding; `stop` silences it at once and is safe to call twice."""

    def stop(self) -> None: ...


class StreamSink(Sound, Protocol):
    """Where a stream's frames go, in order, as they arrive."""

    def feed(self, frames: list[bytes]) -> None: ...


class Player(Protocol):
    name: str

    def play_file(self, path: Path | None, volume: Volume) -> Sound: ...

    def play_tone(self, hz: int, volume: Volume) -> Sound: ...

    def open_stream(self, fmt: StreamFormat, volume: Volume) -> StreamSink: ...

    def close(self) -> None: ...


class _Silent:
    def stop(self) -> None:
        return None


class CountingSink:
    """A stream's frames, counted: what a simulated loudspeaker would have decoded."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.stopped = False

    def feed(self, frames: list[bytes]) -> None:
        if not self.stopped:
            self.frames += len(frames)
            self.bytes += sum(len(f) for f in frames)

    def stop(self) -> None:
        self.stopped = True


class SimulatedPlayer:
    """No loudspeaker: recordings and tones last as long as the caller lets them."""

    name = "simulated"

    def __init__(self) -> None:
        self.files = 0  # recordings asked to play

    def play_file(self, path: Path | None, volume: Volume) -> Sound:
        self.files += 1
        return _Silent()

    def play_tone(self, hz: int, volume: Volume) -> Sound:
        return _Silent()

    def open_stream(self, fmt: StreamFormat, volume: Volume) -> StreamSink:
        return CountingSink()

    def close(self) -> None:
        return None
