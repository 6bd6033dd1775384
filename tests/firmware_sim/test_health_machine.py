"""The real node's health readers against this machine's own values (and, for sources this
machine lacks, against small fake sysfs trees and the tools' documented output)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim import health_machine as hm
from firmware_sim.clock_watch import ClockWatch
from firmware_sim.health import NodeHealth

THERMAL = Path("/sys/class/thermal")
POWER = Path("/sys/class/power_supply")


def zone_values() -> list[float]:
    values = []
    for zone in THERMAL.glob("thermal_zone*"):
        try:
            values.append(round(int((zone / "temp").read_text()) / 1000, 1))
        except (OSError, ValueError):
            continue
    return values


def test_temperature_is_a_thermal_zones_value_or_unknown_without_one() -> None:
    reading = hm.cpu_temperature()
    zones = [v for v in zone_values() if -40 <= v <= 150]
    if zones:
        assert reading in zones
    else:
        assert reading is None


def test_the_cpu_zone_is_preferred_and_broken_zones_are_skipped(tmp_path: Path) -> None:
    def zone(n: int, kind: str, temp: str) -> None:
        (tmp_path / f"thermal_zone{n}").mkdir()
        (tmp_path / f"thermal_zone{n}" / "type").write_text(kind + "\n")
        (tmp_path / f"thermal_zone{n}" / "temp").write_text(temp + "\n")

    assert hm.cpu_temperature(tmp_path) is None  # no zone: unknown
    zone(0, "acpitz", "27800")
    zone(1, "cpu-thermal", "48312")
    zone(2, "gpu-thermal", "not a number")
    assert hm.cpu_temperature(tmp_path) == 48.3


def test_free_storage_of_the_cache_dir_is_within_1_percent_of_statvfs_and_df(
    tmp_path: Path,
) -> None:
    reading = hm.storage_free_mb(tmp_path)
    assert reading is not None
    st = os.statvfs(tmp_path)
    assert abs(reading - st.f_bavail * st.f_frsize / 2**20) <= max(1, reading / 100)
    if shutil.which("df"):
        out = subprocess.run(
            ["df", "-B1M", "--output=avail", str(tmp_path)], capture_output=True, text=True
        )
        if out.returncode == 0:
            df_mb = int(out.stdout.split()[-1])
            assert abs(reading - df_mb) <= max(1, df_mb / 100)
    assert hm.storage_free_mb(tmp_path / "missing") is None


def test_uptime_is_the_machines() -> None:
    reading = hm.machine_uptime_s()
    proc = float(Path("/proc/uptime").read_text().split()[0])
    assert reading is not None and abs(reading - proc) <= 2


def test_load_and_memory_are_the_machines() -> None:
    load = hm.load_1m()
    assert load is not None and abs(load - os.getloadavg()[0]) <= 0.5
    memory = hm.memory_free_mb()
    text = Path("/proc/meminfo").read_text()
    available = next(int(line.split()[1]) for line in text.splitlines() if "MemAvailable" in line)
    assert memory is not None and abs(memory - available / 1024) <= max(64, available / 1024 / 20)


def test_the_network_interface_is_the_default_routes() -> None:
    reading = hm.default_interface()
    if shutil.which("ip"):
        out = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True)
        words = out.stdout.split()
        if "dev" in words:
            assert reading == words[words.index("dev") + 1]
            return
    routes = Path("/proc/net/route").read_text().splitlines()[1:]
    defaults = [r.split()[0] for r in routes if r.split()[1] == "00000000"]
    assert reading in defaults if defaults else True


def test_signal_and_power_are_unknown_without_a_modem_or_power_supply() -> None:
    if shutil.which("mmcli") is not None:
        pytest.skip("this machine has ModemManager")
    assert hm.modem_signal_dbm() is None
    interface = hm.default_interface()
    wireless = Path("/proc/net/wireless")
    on_wifi = wireless.exists() and interface is not None and interface in wireless.read_text()
    readings = hm.MachineHealth().read()
    if not on_wifi:
        assert readings.signal_dbm is None
    if not any(POWER.glob("*")):
        assert readings.power == hm.PowerState()  # power, battery and supply all unknown


def test_speaker_and_amplifier_are_not_checked_without_a_hook(tmp_path: Path) -> None:
    readings = hm.MachineHealth(cache_dir=tmp_path).read()
    assert readings.speaker_ok is None and readings.amplifier_ok is None
    assert hm.check_command("true") is True
    assert hm.check_command("false") is False
    assert hm.check_command("/nonexistent/check-amplifier") is None


def test_a_power_supply_board_and_a_power_hook_are_read(tmp_path: Path) -> None:
    battery, ac = tmp_path / "BAT0", tmp_path / "AC"
    battery.mkdir()
    ac.mkdir()
    (battery / "type").write_text("Battery\n")
    (battery / "capacity").write_text("41\n")
    (battery / "status").write_text("Discharging\n")
    (ac / "type").write_text("Mains\n")
    (ac / "online").write_text("0\n")
    assert hm.power_from_sysfs(tmp_path) == hm.PowerState("battery", 41, None)
    (battery / "status").write_text("Charging\n")
    (ac / "online").write_text("1\n")
    assert hm.power_from_sysfs(tmp_path) == hm.PowerState("mains", 41, None)
    assert hm.power_from_sysfs(tmp_path / "none") == hm.PowerState()

    hook = tmp_path / "ups.py"
    hook.write_text('print(\'{"power": "battery", "battery_pct": 18, "supply_v": null}\')\n')
    assert hm.power_from_command(f"{sys.executable} {hook}") == hm.PowerState("battery", 18)
    assert hm.power_from_command("false") == hm.PowerState()


def test_clock_and_modem_outputs_are_parsed() -> None:
    chrony = (
        "Reference ID    : C0A80101 (ntp.lan)\nStratum         : 3\n"
        "System time     : 0.000412345 seconds slow of NTP time\n"
        "Leap status     : Normal\n"
    )
    assert hm.parse_chrony_tracking(chrony) == hm.ClockState(True, -0.412, "chrony")
    unsynced = "System time     : 0.120000000 seconds fast of NTP time\n"
    unsynced += "Leap status     : Not synchronised\n"
    assert hm.parse_chrony_tracking(unsynced) == hm.ClockState(False, 120.0, "chrony")
    assert hm.parse_timesync_offset("       Server: 10.0.0.1\n       Offset: -1.503ms\n") == -1.503
    assert hm.parse_timesync_offset("       Offset: +250us\n") == 0.25
    assert hm.parse_timesync_offset("nothing") is None
    assert hm.parse_mmcli_signal("modem.signal.lte.rssi : -71.00\n") == -71
    assert hm.parse_mmcli_signal("modem.signal.lte.rssi : --\n") is None


def test_a_heartbeat_from_the_machine_says_null_for_unknowns(tmp_path: Path) -> None:
    readings = hm.MachineHealth(cache_dir=tmp_path).read()
    t = NodeHealth(storage_free_mb=1800, signal_dbm=-67).telemetry(
        "n1", 1_800_000_000_000, 5, None, 0, 0, controller_delay_ms=12, readings=readings
    )
    assert t.storage_free_mb == readings.storage_free_mb != 1800
    assert t.uptime_s == readings.uptime_s and t.load_1m == readings.load_1m
    assert t.temperature_c == readings.temperature_c
    assert t.speaker_ok is None and t.amplifier_ok is None
    assert t.controller_delay_ms == 12
    if readings.power.power is None:
        assert t.power is None and '"power":null' in t.model_dump_json()


def test_the_clock_watch_keeps_the_least_delayed_live_sample() -> None:
    watch = ClockWatch()
    assert watch.delay_ms() is None
    watch.arrived(10_000, live=False)
    watch.issued(1_000)  # retained: days old perhaps, not a sample
    assert watch.delay_ms() is None
    for received, issued in ((5_040, 5_000), (6_012, 6_000), (7_300, 7_000)):
        watch.arrived(received, live=True)
        watch.issued(issued)
    assert watch.delay_ms() == 12
    watch.issued(0)  # no arrival pending: ignored
    assert watch.delay_ms() == 12
