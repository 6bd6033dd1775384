"""The last timeline a node applied, kept in its cache directory: after a reboot it plays its
programme from disk (media is cached there too) even while the broker cannot be reached.

The signed envelope is kept as received and checked again at start (signature by a key the
node still trusts, not expired), so a file changed on the device is not obeyed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from firmware_sim.replay_journal import write_atomic
from protocol import RejectedMessage, TimelineBody, Verifier

log = logging.getLogger(__name__)

TIMELINE_FILE = "timeline.json"


def save(cache_dir: Path | None, payload: bytes) -> None:
    if cache_dir is None:
        return
    try:
        write_atomic(cache_dir / TIMELINE_FILE, payload)
    except OSError as exc:  # a full card must not stop the node playing
        log.error("cannot keep the timeline on disk: %s", exc)


def restore(
    cache_dir: Path | None, node_id: str, verifier: Verifier, now_ms: int
) -> TimelineBody | None:
    """The kept timeline, if it is still good (signed by a trusted key, not expired, ours)."""
    if cache_dir is None:
        return None
    path = cache_dir / TIMELINE_FILE
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: cannot read %s: %s", node_id, path, exc)
        return None
    try:
        env = verifier.authentic(payload, "timeline")
        if now_ms >= env.exp:
            raise RejectedMessage("expired")
        body = TimelineBody.model_validate(env.body)
    except (RejectedMessage, ValidationError) as exc:
        log.warning("%s: the timeline kept on disk is not used: %s", node_id, exc)
        return None
    if body.node_id != node_id:
        log.warning("%s: the timeline kept on disk is for %s", node_id, body.node_id)
        return None
    log.info("%s: timeline v%d restored from disk", node_id, body.version)
    return body
