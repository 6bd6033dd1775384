"""How the kit starts, stops and restarts the node under test.

A manufacturer plugs a node in with a command line (`CommandNode`): the kit writes the node's
provisioning file and runs the command with `{provision}` and `{cache_dir}` filled in; it stops
the node with SIGTERM (as `systemctl stop` does) and starts it again for the restart checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
from pathlib import Path
from typing import IO, Protocol

STOP_TIMEOUT_S = 15.0


class NodeUnderTest(Protocol):
    async def start(self, provision: Path, cache_dir: Path) -> None:
        """Start the node with this provisioning file, keeping its state under `cache_dir`."""

    async def stop(self) -> None:
        """Stop it (as a service stop would); its cache directory stays."""


class CommandNode:
    """A node run as a process from a command template, e.g.
    `python -m firmware_sim --single --provision {provision} --cache-dir {cache_dir}`."""

    def __init__(self, template: str, log_path: Path | None = None) -> None:
        if "{provision}" not in template:
            raise ValueError("the node command must contain {provision}")
        self.template = template
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.exit_codes: list[int] = []

    def argv(self, provision: Path, cache_dir: Path) -> list[str]:
        return [
            part.replace("{provision}", str(provision)).replace("{cache_dir}", str(cache_dir))
            for part in shlex.split(self.template)
        ]

    async def start(self, provision: Path, cache_dir: Path) -> None:
        if self.log_path is not None and self._log is None:
            self._log = self.log_path.open("ab")
        out = self._log if self._log is not None else asyncio.subprocess.DEVNULL
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv(provision, cache_dir), stdout=out, stderr=asyncio.subprocess.STDOUT
        )

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self.exit_codes.append(proc.returncode if proc.returncode is not None else -1)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
