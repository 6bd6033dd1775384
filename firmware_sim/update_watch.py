"""The watch over a firmware update: `python -m firmware_sim.update_watch INSTALL_DIR`.

Started by the old version just before it restarts into the new one, in a session of its own
so that the restart does not take it along. It waits until the new version confirms the update
(online on the broker) or the deadline passes; then it switches `current` back to the previous
release and runs the restart command again, and the old version, once up, reports the failure.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from firmware_sim import release

log = logging.getLogger("firmware_sim.update_watch")

POLL_S = 0.2  # how often update.json is read: a small file on the node's own disk


def watch(install_dir: Path) -> str:
    """The update's final status: confirmed, rolled_back, or settled (the node confirmed it and
    cleared it before the watch looked again)."""
    while True:
        pending = release.load(install_dir)
        if pending is None:
            return "settled"
        if pending.status != "installed":
            return pending.status
        if time.time() * 1000 >= pending.deadline_ms:
            break
        time.sleep(POLL_S)
    pending = release.settle(install_dir, "rolled_back", running="")
    if pending is None or pending.status != "rolled_back":
        return pending.status if pending is not None else "settled"
    log.warning(
        "version %s not online in time: back to %s (%s); restarting",
        pending.version,
        pending.previous_version,
        pending.previous_target,
    )
    restart = subprocess.run(pending.restart_command, shell=True, check=False)
    if restart.returncode != 0:
        log.error("restart command exited with %d", restart.returncode)
    return "rolled_back"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m firmware_sim.update_watch INSTALL_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    status = watch(Path(args[0]))
    log.info("update %s", status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
