"""The real node's health, read from the machine it runs on (single-node mode).

Nothing here is invented: a reading the machine does not offer, or that fails, is None, which
the heartbeat sends as `null` ("unknown"). The simulator's readings and fault scenarios are in
`firmware_sim.health` (`NodeHealth`); this module is what a Raspberry Pi loudspeaker reports.

Sources, in order of preference:
- temperature: /sys/class/thermal/thermal_zone*/temp (the CPU's zone where one is named so);
- storage: os.statvfs on the media cache directory (blocks available to the node's user);
- memory: MemAvailable of /proc/meminfo; uptime: /proc/uptime; load: os.getloadavg();
- network: the interface of the default route (/proc/net/route, then /proc/net/ipv6_route);
- signal: ModemManager (`mmcli`) for a cellular modem, else /proc/net/wireless for the Wi-Fi
  interface in use, else unknown (an Ethernet cable has no signal);
- power: a configured command (JSON on stdout), else a UPS or battery board's entries under
  /sys/class/power_supply, else unknown;
- speaker, amplifier: a configured check command each (exit 0: fine; another status: fault;
  e.g. `gpioget` on an amplifier's fault line, or an ALSA loop-back measurement), else
  "not checked" (None);
- clock: chrony (`chronyc tracking`), else systemd-timesyncd (`timedatectl`), else unknown.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 5.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class ClockState:
    synced: bool | None = None
    offset_ms: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class PowerState:
    power: Literal["mains", "battery"] | None = None
    battery_pct: int | None = None
    supply_v: float | None = None


@dataclass(frozen=True)
class Readings:
    """One heartbeat's worth of machine readings; None: unknown (or not checked)."""

    uptime_s: int | None = None
    temperature_c: float | None = None
    storage_free_mb: int | None = None
    memory_free_mb: int | None = None
    load_1m: float | None = None
    network: str | None = None
    signal_dbm: int | None = None
    power: PowerState = PowerState()
    speaker_ok: bool | None = None
    amplifier_ok: bool | None = None
    clock: ClockState = ClockState()


# --- small, separately testable readers ------------------------------------------------------


def cpu_temperature(root: Path = Path("/sys/class/thermal")) -> float | None:
    """°C of the CPU's thermal zone (or the first zone that reads), None when none does."""
    zones: list[tuple[bool, str, float]] = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip().lower()
            value = int((zone / "temp").read_text().strip()) / 1000
        except (OSError, ValueError):
            continue
        if -40 <= value <= 150:
            cpu = any(word in kind for word in ("cpu", "soc", "x86_pkg", "k10temp", "coretemp"))
            zones.append((not cpu, zone.name, round(value, 1)))
    if not zones:
        return None
    zones.sort(key=lambda z: (z[0], int(z[1].removeprefix("thermal_zone") or 0)))
    return zones[0][2]


def storage_free_mb(path: Path | str | None) -> int | None:
    """MiB available to unprivileged writers on the file system holding `path` (df's Avail)."""
    if path is None:
        return None
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize // MIB


def memory_free_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def machine_uptime_s(path: Path = Path("/proc/uptime")) -> int | None:
    try:
        return int(float(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def load_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def default_interface(proc_net: Path = Path("/proc/net")) -> str | None:
    """The interface of the default route with the lowest metric (IPv4, else IPv6)."""
    best: tuple[int, str] | None = None
    try:
        for line in (proc_net / "route").read_text().splitlines()[1:]:
            f = line.split()
            # Iface Destination Gateway Flags RefCnt Use Metric Mask ...; flag 1: up.
            if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000" and int(f[3], 16) & 1:
                candidate = (int(f[6]), f[0])
                best = candidate if best is None or candidate < best else best
    except (OSError, ValueError):
        pass
    if best is None:
        try:
            for line in (proc_net / "ipv6_route").read_text().splitlines():
                f = line.split()
                # dest, dest prefix, src, src prefix, next hop, metric, refcnt, use, flags, iface
                if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
                    candidate = (int(f[5], 16), f[9])
                    best = candidate if best is None or candidate < best else best
        except (OSError, ValueError):
            pass
    return best[1] if best else None


def wifi_signal_dbm(
    interface: str | None, wireless: Path = Path("/proc/net/wireless")
) -> int | None:
    """The link level of a Wi-Fi interface, in dBm (from the kernel's wireless statistics)."""
    if not interface:
        return None
    try:
        lines = wireless.read_text().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() != interface:
            continue
        fields = rest.split()
        try:
            level = int(float(fields[2]))
        except (IndexError, ValueError):
            return None
        return level if -150 <= level < 0 else None
    return None


def run(
    command: list[str], timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str] | None:
    """A command's result, or None when it cannot be run (absent, timed out)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s: %s", command[0], exc)
        return None


def modem_signal_dbm() -> int | None:
    """RSSI of the first ModemManager modem, when mmcli is installed and a modem reports it."""
    if shutil.which("mmcli") is None:
        return None
    listing = run(["mmcli", "-L", "--output-keyvalue"])
    if listing is None or listing.returncode != 0:
        return None
    match = re.search(r"/Modem/(\d+)", listing.stdout)
    if match is None:
        return None
    signal = run(["mmcli", "-m", match.group(1), "--signal-get", "--output-keyvalue"])
    if signal is None or signal.returncode != 0:
        return None
    return parse_mmcli_signal(signal.stdout)


def parse_mmcli_signal(text: str) -> int | None:
    """The first RSSI of `mmcli --signal-get --output-keyvalue` (LTE, 5G, UMTS or GSM)."""
    for tech in ("lte", "nr5g", "umts", "gsm", "cdma1x", "evdo"):
        match = re.search(rf"^modem\.signal\.{tech}\.rssi\s*:\s*(-?[\d.]+)", text, re.MULTILINE)
        if match:
            value = round(float(match.group(1)))
            if -150 <= value < 0:
                return value
    return None


def power_from_sysfs(root: Path = Path("/sys/class/power_supply")) -> PowerState:
    """A battery (UPS HAT, PiSugar, laptop) and mains adapters under power_supply."""
    battery_pct: int | None = None
    discharging: bool | None = None
    mains_online: bool | None = None
    supply_v: float | None = None
    for entry in sorted(root.glob("*")):
        kind = _read(entry / "type")
        if kind == "Battery":
            if (capacity := _read(entry / "capacity")) is not None and capacity.isdigit():
                battery_pct = max(0, min(100, int(capacity)))
            status = _read(entry / "status")
            if status is not None:
                discharging = status == "Discharging"
        elif kind in ("Mains", "USB", "USB_PD", "USB_C"):
            online = _read(entry / "online")
            if online in ("0", "1"):
                mains_online = bool(mains_online) or online == "1"
            volts = _read(entry / "voltage_now")
            if online == "1" and volts is not None and volts.lstrip("-").isdigit():
                supply_v = round(int(volts) / 1_000_000, 2)
    if discharging is None and mains_online is None:
        return PowerState()
    on_battery = discharging if discharging is not None else not mains_online
    return PowerState(
        power="battery" if on_battery else "mains",
        battery_pct=battery_pct,
        supply_v=supply_v if not on_battery else None,
    )


def power_from_command(command: str) -> PowerState:
    """A documented hook: the command prints {"power": "mains"|"battery", "battery_pct": 0-100,
    "supply_v": volts}; absent or null fields are unknown."""
    result = run(shlex.split(command))
    if result is None or result.returncode != 0:
        return PowerState()
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return PowerState()
    if not isinstance(data, dict):
        return PowerState()
    power = data.get("power") if data.get("power") in ("mains", "battery") else None
    pct = data.get("battery_pct")
    volts = data.get("supply_v")
    return PowerState(
        power=power,
        battery_pct=int(pct) if isinstance(pct, int | float) and 0 <= pct <= 100 else None,
        supply_v=float(volts) if isinstance(volts, int | float) and 0 <= volts <= 400 else None,
    )


def check_command(command: str | None) -> bool | None:
    """A hardware check hook: exit 0 is fine, another status is a fault; None: not checked
    (no command, or it could not run at all)."""
    if not command:
        return None
    result = run(shlex.split(command))
    if result is None or result.returncode in (126, 127):  # not executable / not found
        return None
    return result.returncode == 0


def chrony_clock() -> ClockState | None:
    if shutil.which("chronyc") is None:
        return None
    result = run(["chronyc", "tracking"])
    if result is None or result.returncode != 0:
        return None  # chronyd not running
    return parse_chrony_tracking(result.stdout)


def parse_chrony_tracking(text: str) -> ClockState | None:
    """`chronyc tracking`: "System time : 0.000012 seconds fast of NTP time", "Leap status"."""
    offset: float | None = None
    match = re.search(r"^System time\s*:\s*([\d.]+) seconds (fast|slow)", text, re.MULTILINE)
    if match:
        offset = float(match.group(1)) * 1000 * (1 if match.group(2) == "fast" else -1)
    leap = re.search(r"^Leap status\s*:\s*(.+)$", text, re.MULTILINE)
    if leap is None and offset is None:
        return None
    synced = None if leap is None else leap.group(1).strip() != "Not synchronised"
    return ClockState(
        synced=synced, offset_ms=round(offset, 3) if offset is not None else None, source="chrony"
    )


def timesyncd_clock() -> ClockState | None:
    if shutil.which("timedatectl") is None:
        return None
    shown = run(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP"])
    if shown is None or shown.returncode != 0:
        return None
    props = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    if props.get("NTP") != "yes":
        return None  # no network time service is enabled: unknown rather than "unsynced"
    status = run(["timedatectl", "timesync-status"])
    offset = parse_timesync_offset(status.stdout) if status and status.returncode == 0 else None
    synced = props.get("NTPSynchronized")
    return ClockState(
        synced=None if synced is None else synced == "yes", offset_ms=offset, source="timesyncd"
    )


_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "min": 60_000.0}


def parse_timesync_offset(text: str) -> float | None:
    """`timedatectl timesync-status`: "Offset: +1.234ms" (the last measured offset)."""
    match = re.search(r"^\s*Offset:\s*([+-]?[\d.]+)\s*(ns|us|µs|ms|s|min)\s*$", text, re.MULTILINE)
    if match is None:
        return None
    return round(float(match.group(1)) * _UNITS_MS[match.group(2)], 3)


def clock_state() -> ClockState:
    return chrony_clock() or timesyncd_clock() or ClockState()


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


# --- the node's reader -----------------------------------------------------------------------


@dataclass
class MachineHealth:
    """Reads the machine for each heartbeat. Slow sources (commands) run in the caller's
    thread: the heartbeat calls `read` through `asyncio.to_thread`."""

    cache_dir: Path | None = None
    power_command: str | None = None
    speaker_check_command: str | None = None
    amplifier_check_command: str | None = None
    clock_every_s: float = 60.0  # chrony is asked at most this often
    _clock: ClockState = ClockState()
    _clock_read_at: float | None = None

    def read(self) -> Readings:
        interface = default_interface()
        signal = modem_signal_dbm()
        if signal is None:
            signal = wifi_signal_dbm(interface)
        power = power_from_command(self.power_command) if self.power_command else power_from_sysfs()
        now = time.monotonic()
        if self._clock_read_at is None or now - self._clock_read_at >= self.clock_every_s:
            self._clock, self._clock_read_at = clock_state(), now
        return Readings(
            uptime_s=machine_uptime_s(),
            temperature_c=cpu_temperature(),
            storage_free_mb=storage_free_mb(self.cache_dir),
            memory_free_mb=memory_free_mb(),
            load_1m=load_1m(),
            network=interface,
            signal_dbm=signal,
            power=power,
            speaker_ok=check_command(self.speaker_check_command),
            amplifier_ok=check_command(self.amplifier_check_command),
            clock=self._clock,
        )
