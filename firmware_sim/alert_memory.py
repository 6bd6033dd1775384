"""The alerts a node has done with (finished, cancelled, failed), kept across restarts.

After a restart the broker delivers an active alert's retained `play` again, and the replay
journal takes it once more (what a retained message set up is lost with a restart). An alert
this node has already sounded to its end must not sound again: its id and version are kept in
the cache directory, atomically, the most recent `KEEP` of them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from firmware_sim.replay_journal import write_atomic

log = logging.getLogger(__name__)

KEEP = 256


def load(path: Path | None) -> dict[str, int]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # torn by a power cut: sound rather than stay silent
        log.warning("unreadable %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        return {}
    kept = {str(k)[:200]: v for k, v in data.items() if isinstance(v, int) and v >= 0}
    return dict(list(kept.items())[-KEEP:])


def remember(settled: dict[str, int], alert_id: str, version: int) -> None:
    """Put `alert_id` at `version` last (the most recent), keeping the last KEEP: the same
    bound in memory as on disk, for a node that runs for months."""
    settled.pop(alert_id, None)
    settled[alert_id] = version
    while len(settled) > KEEP:
        del settled[next(iter(settled))]


def save(path: Path | None, settled: dict[str, int]) -> None:
    if path is None:
        return
    try:
        write_atomic(path, json.dumps(settled).encode())
    except OSError as exc:
        log.warning("cannot keep finished alerts in %s: %s", path, exc)
