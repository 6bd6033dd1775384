"""Firmware updates on the node: download with the node's token, verify, install, reboot, report.

A simulated node keeps the image in its cache directory and reconnects with the new version. A
real node with an install directory (`Releases`) installs it as a release and restarts its
service into it (`release`), and the update is settled by whichever version comes online: the
new one confirms it, or the old one, put back by `update_watch`, reports that the new one did
not come up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from pydantic import ValidationError

from firmware_sim import release
from firmware_sim.download import Downloader, DownloadError, Failure
from firmware_sim.trust import summarise
from protocol import Clock, CommandAck, CommandStage, FirmwareUpdate

log = logging.getLogger(__name__)


class FirmwareError(Exception):
    """An update that cannot be installed; the message becomes the failed ack's detail."""


@dataclass(frozen=True)
class Releases:
    """Where a real node installs updates as releases (docs/node-install.md, "Firmware
    updates") and how its service is restarted into one."""

    install_dir: Path
    restart_command: str | None
    confirm_s: float  # the new version must be online within this, or it is rolled back


class Firmware:
    """The installed version (the provisioned one, then what an update installed, kept on disk
    with a cache directory; with `releases`, the release `current` points at) and at most one
    update at a time.

    The final ack of an update is kept until the broker has it (on disk too), so the ack of an
    update that reboots the node is sent by the rebooted node, already running the new version.
    """

    def __init__(
        self,
        node_id: str,
        clock: Clock,
        installed: str,
        cache_dir: Path | None,
        downloader: Downloader,
        ack_topic: str,
        session: Callable[[], aiomqtt.Client | None],
        spawn: Callable[[Coroutine[Any, Any, object], str], None],
        boot: Callable[[], int],
        reboot: asyncio.Event,
        releases: Releases | None = None,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.version = installed
        self.state_file = cache_dir / "firmware.json" if cache_dir else None
        self.image_dir = cache_dir / "firmware" if cache_dir else None
        self.downloader = downloader
        self.ack_topic = ack_topic
        self.session = session  # the connected client, or None between connections
        self.spawn = spawn
        self.boot = boot
        self.reboot = reboot  # set to ask the node to reboot
        self.releases = releases
        self.updating: str | None = None
        self.unsent: list[CommandAck] = []
        self._sending = asyncio.Lock()
        self._load()
        if releases is not None:
            # What the service runs is the release `current` points at.
            running = release.current_version(releases.install_dir)
            if running is not None:
                self.version = running

    def start(self, cmd_id: str, args: dict[str, Any]) -> tuple[bool, str] | None:
        """Begin an update. The final answer when there is nothing to do; None when the update
        runs (its progress and result are acked as it goes)."""
        try:
            update = FirmwareUpdate.model_validate(args)
        except ValidationError as exc:
            return False, f"invalid update_firmware args: {summarise(exc)}"
        if update.version == self.version:
            return True, f"already running {update.version}"
        if self.updating is not None:
            return False, f"busy: the update to {self.updating} is in progress"
        self.updating = update.version
        self.spawn(self._run(cmd_id, update), f"firmware-{update.version}")
        return None

    async def on_connect(self, client: aiomqtt.Client) -> None:
        """Send the final acks the broker has not taken yet (one from before a reboot). Called
        once the node's online state is out: a new release is confirmed here."""
        if self.releases is not None:
            self._settle_release(self.releases.install_dir)
        async with self._sending:
            while self.unsent:
                ack = self.unsent[0]
                await client.publish(self.ack_topic, ack.model_dump_json(), qos=1)
                self.unsent.pop(0)
                self._save()

    async def _run(self, cmd_id: str, update: FirmwareUpdate) -> None:
        old = self.version
        try:
            await self._progress(cmd_id, CommandStage.downloading, f"{update.size} bytes")
            image, mismatch = await self._download(update)
            await self._progress(cmd_id, CommandStage.verifying, "sha256")
            if mismatch is not None:
                raise FirmwareError(
                    f"sha256 mismatch (image is {mismatch[:16]}…, expected {update.sha256[:16]}…): "
                    f"refused, still running {old}"
                )
            await self._progress(cmd_id, CommandStage.installing, update.version)
            if self.releases is not None:
                await self._install_release(self.releases, cmd_id, update, image)
                return  # the service restarts; the version that comes online answers
            self._install(update, image)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is reported; the node keeps its old version
            detail = str(exc) if isinstance(exc, FirmwareError) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s: firmware update to %s failed: %s", self.node_id, update.version, detail
            )
            self.updating = None
            self.unsent.append(self._ack(cmd_id, False, CommandStage.failed, detail))
            self._save()
            await self._flush()
            return
        log.info("%s: firmware %s installed (was %s); rebooting", self.node_id, update.version, old)
        self.updating = None
        self.unsent.append(
            self._ack(cmd_id, True, CommandStage.done, f"updated from {old} to {update.version}")
        )
        self._save()
        await self._progress(cmd_id, CommandStage.rebooting, f"boot {self.boot() + 1}")
        self.reboot.set()

    async def _download(self, update: FirmwareUpdate) -> tuple[Path | None, str | None]:
        """The verified image (None on a node that keeps no files) and, when the bytes were
        not the signed ones, their sha256 instead (nothing is kept of them)."""
        dest = None
        if self.image_dir is not None:
            dest = self.image_dir / f"{update.sha256}.bin"
        try:
            await self.downloader.fetch(
                update.url, max_bytes=update.size, exact=True, sha256=update.sha256, dest=dest
            )
        except DownloadError as exc:
            if exc.kind == Failure.hash_mismatch and exc.sha256 is not None:
                return None, exc.sha256
            raise FirmwareError(f"download failed: {exc}") from None
        return dest, None

    def _install(self, update: FirmwareUpdate, image: Path | None) -> None:
        if image is not None and self.image_dir is not None:
            image.replace(self.image_dir / "installed.bin")
        self.version = update.version
        self._save()

    async def _install_release(
        self, releases: Releases, cmd_id: str, update: FirmwareUpdate, image: Path | None
    ) -> None:
        """Unpack, switch `current`, start the watch, restart the service."""
        install_dir = releases.install_dir
        restart_command = releases.restart_command
        if not restart_command:
            raise FirmwareError("no restart_command: the node cannot restart into a new release")
        if image is None:
            raise FirmwareError("no cache directory to download the image into")
        previous = release.target_of_current(install_dir)
        if previous is None:
            raise FirmwareError(
                f"{install_dir / release.CURRENT} is not a symlink to a release: install the "
                "running version as a release first (docs/node-install.md)"
            )
        try:
            folder = await asyncio.to_thread(_unpack, image, install_dir, update.version)
        except release.ReleaseError as exc:
            raise FirmwareError(f"{exc}: still running {self.version}") from None
        pending = release.PendingUpdate(
            cmd_id=cmd_id,
            version=update.version,
            previous_version=self.version,
            previous_target=previous,
            deadline_ms=int(time.time() * 1000 + releases.confirm_s * 1000),
            confirm_s=releases.confirm_s,
            restart_command=restart_command,
        )
        release.begin(install_dir, pending, folder)
        await self._progress(cmd_id, CommandStage.rebooting, f"restarting into {update.version}")
        try:
            await asyncio.to_thread(_restart, install_dir, restart_command)
        except OSError as exc:
            release.settle(install_dir, "rolled_back", running="")
            release.clear(install_dir)
            raise FirmwareError(f"cannot restart into {update.version}: {exc}") from None
        log.info(
            "%s: release %s installed (was %s); restarting the service",
            self.node_id,
            update.version,
            pending.previous_version,
        )

    def _settle_release(self, install_dir: Path) -> None:
        """An update left by the previous run: confirmed if this is its version (now online),
        reported failed if the watch put the previous release back."""
        pending = release.load(install_dir)
        if pending is None:
            return
        if pending.status == "installed" and pending.version == self.version:
            done = self._ack(
                pending.cmd_id,
                True,
                CommandStage.done,
                f"updated from {pending.previous_version} to {pending.version}",
            )
            self.unsent.append(done)  # kept before the confirmation, so it cannot be lost
            self._save()
            settled = release.settle(install_dir, "confirmed", running=self.version)
            if settled is None or settled.status != "confirmed":  # the watch was quicker
                self.unsent.remove(done)
                self._save()
                return
            log.info("%s: release %s confirmed", self.node_id, pending.version)
            previous = Path(pending.previous_target).name
            release.prune(install_dir, keep={pending.version, previous})
        elif pending.status == "rolled_back" and pending.version != self.version:
            detail = (
                f"version {pending.version} did not come online within {pending.confirm_s:g} s: "
                f"rolled back to {self.version}"
            )
            log.warning("%s: %s", self.node_id, detail)
            self.unsent.append(self._ack(pending.cmd_id, False, CommandStage.failed, detail))
            self._save()
        elif pending.status == "installed":
            return  # the watch has not decided yet: leave it to the watch
        release.clear(install_dir)

    def _ack(self, cmd_id: str, ok: bool, stage: CommandStage, detail: str) -> CommandAck:
        return CommandAck(
            node_id=self.node_id,
            cmd_id=cmd_id,
            ts=self.clock.now_ms(),
            ok=ok,
            detail=detail[:500],
            stage=stage,
            firmware=self.version,
        )

    async def _progress(self, cmd_id: str, stage: CommandStage, detail: str) -> None:
        """Best effort: a progress ack lost to a broken link costs nothing, the final one waits."""
        ack = self._ack(cmd_id, True, stage, detail)
        ack.final = False
        client = self.session()
        if client is None:
            return
        try:
            await client.publish(self.ack_topic, ack.model_dump_json(), qos=1)
        except aiomqtt.MqttError as exc:
            log.info("%s: progress %s not sent: %s", self.node_id, stage, exc)

    async def _flush(self) -> None:
        client = self.session()
        if client is None:
            return  # sent on the next connect
        try:
            await self.on_connect(client)
        except aiomqtt.MqttError as exc:
            log.info("%s: final ack waits for the next connect: %s", self.node_id, exc)

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.is_file():
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            version = str(data.get("version") or "")[:200]
            unsent = [CommandAck.model_validate(a) for a in data.get("unsent", [])]
        except (OSError, ValueError, AttributeError) as exc:
            # A torn file after power loss: keep the provisioned version rather than fail to boot.
            log.warning("%s: unreadable %s: %s", self.node_id, self.state_file, exc)
            return
        if version:
            self.version = version
        self.unsent = unsent

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"version": self.version, "unsent": [a.model_dump(mode="json") for a in self.unsent]}
        tmp = self.state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(self.state_file)
        except OSError as exc:
            log.warning("%s: cannot persist firmware state: %s", self.node_id, exc)


def _unpack(image: Path, install_dir: Path, version: str) -> Path:
    try:
        return release.unpack(image, install_dir, version)
    finally:
        image.unlink(missing_ok=True)


def _restart(install_dir: Path, restart_command: str) -> None:
    """Start the watch, then the restart, each in a session of its own: the restart stops this
    process and must not stop them."""
    with (install_dir / "update-watch.log").open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.update_watch", str(install_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    subprocess.Popen(restart_command, shell=True, start_new_session=True)
