"""The replay state on disk: a journal the node appends to before acting on a message.

One JSON line `[topic, seq, id]` per accepted envelope. Appending costs a few microseconds and
the line is in the kernel before the node acts, so a crash or restart of the node software
forgets nothing. Durability against a power cut comes from an fsync in a worker thread at most
`FLUSH_S` after the first unsynced line: it never delays playback, and the only window left is
the last second before a power cut. The fsyncs of a process are done together (`Syncs`): one
timer and one worker-thread job a round for every journal, since a fleet runs thousands of
nodes in one process and an alert reaches them all at once. The journal is compacted (one line
per topic, written to a temporary file, fsynced, renamed) when it grows past `COMPACT_AT`
lines, and at a start that finds a line torn by a power cut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from protocol.replay import ReplayState

log = logging.getLogger(__name__)

FLUSH_S = 1.0
COMPACT_AT = 64
MAX_LINE = 512


def parse_line(line: bytes) -> tuple[str, int, str] | None:
    """One journal line, or None for anything else (a line torn by a power cut)."""
    if len(line) > MAX_LINE:
        return None
    try:
        match json.loads(line):
            case [str(topic), int(seq), str(env_id)] if seq >= 0 and len(env_id) <= 64:
                return topic, seq, env_id
    except (ValueError, RecursionError):
        pass
    return None


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sync_file(path: Path, node_id: str) -> None:
    """fsync one file; a file gone since is nothing to sync."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.error("%s: cannot open %s to sync it: %s", node_id, path, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        log.error("%s: cannot sync %s: %s", node_id, path, exc)
    finally:
        os.close(fd)


def sync_files(due: dict[Path, str]) -> None:
    for path, node_id in due.items():
        sync_file(path, node_id)


class Syncs:
    """Journals waiting for their fsync, done in rounds: `flush_s` after the first request of a
    round, one worker-thread job syncs every file asked for since. Before, each journal had its
    own timer and job: at 5,000 nodes a process, an alert's journal lines set 5,000 timers going
    at once, and their jobs came due while the alert was still being taken."""

    def __init__(self, flush_s: float = FLUSH_S) -> None:
        self.flush_s = flush_s
        self.rounds = 0  # rounds started (tests wait on it)
        self._due: dict[Path, str] = {}  # path → node id, for the log
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self, path: Path, node_id: str) -> None:
        """Sync `path` within `flush_s`; at once when no event loop runs (a tool)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            sync_file(path, node_id)
            return
        self._due[path] = node_id
        if self._timer is not None and self._loop is loop and not loop.is_closed():
            return  # a round is coming
        if self._timer is not None:
            self._timer.cancel()  # set on a loop that is gone (tests run one loop after another)
        self._loop = loop
        self._timer = loop.call_later(self.flush_s, self._round)

    def flush(self, path: Path, node_id: str) -> None:
        """Sync `path` now if it waits for a round (a journal closing)."""
        if self._due.pop(path, None) is not None:
            sync_file(path, node_id)

    def _round(self) -> None:
        self._timer = None
        due, self._due = self._due, {}
        self.rounds += 1
        if due and self._loop is not None:
            self._loop.run_in_executor(None, sync_files, due)


SYNCS = Syncs()  # one per process: its nodes share the worker threads and the disk


class ReplayJournal:
    def __init__(self, path: Path, node_id: str, syncs: Syncs = SYNCS) -> None:
        self.path = path
        self.node_id = node_id
        self.lines = 0
        self.syncs = syncs

    def load(self) -> ReplayState:
        """What the previous run accepted; the journal is compacted on the way."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        last: dict[str, tuple[int, str]] = {}
        torn = 0
        for line in raw.splitlines():
            entry = parse_line(line)
            if entry is None:
                torn += 1
                continue
            topic, seq, env_id = entry
            if topic not in last or seq >= last[topic][0]:
                last[topic] = (seq, env_id)
        if torn:
            log.warning("%s: %d unreadable line(s) in %s skipped", self.node_id, torn, self.path)
        state = ReplayState.restore(last)
        self.lines = raw.count(b"\n")
        # A torn last line must go before anything is appended after it.
        if torn or not raw.endswith(b"\n") or self.lines >= COMPACT_AT:
            try:
                self.compact(state)
            except OSError as exc:
                log.error("%s: cannot compact %s: %s", self.node_id, self.path, exc)
        return state

    def append(self, state: ReplayState, topic: str) -> None:
        """Record the topic's newly accepted envelope (call before acting on it)."""
        seq, env_id = state.last[topic]
        line = json.dumps([topic, seq, env_id], separators=(",", ":")).encode() + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self.lines += 1
        if self.lines >= COMPACT_AT:
            self.compact(state)
        else:
            self.syncs.request(self.path, self.node_id)

    def compact(self, state: ReplayState) -> None:
        lines = [
            json.dumps([t, seq, env_id], separators=(",", ":")) + "\n"
            for t, (seq, env_id) in state.last.items()
        ]
        write_atomic(self.path, "".join(lines).encode())
        self.lines = len(lines)

    def close(self) -> None:
        self.syncs.flush(self.path, self.node_id)
