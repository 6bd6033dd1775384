"""Structured logs and the settings that keep presence sane."""

from __future__ import annotations

import json
import logging

import pytest

from controller.core.config import ConfigError, Settings
from controller.core.logs import JsonFormatter


def test_json_log_lines_carry_the_message_extras_and_exceptions():
    formatter = JsonFormatter("ctl-1")
    record = logging.makeLogRecord(
        {
            "name": "controller.health.alarms",
            "levelname": "WARNING",
            "msg": "alarm %s",
            "args": ("x",),
        }
    )
    record.node_id = "loa-01"
    line = json.loads(formatter.format(record))
    assert line["message"] == "alarm x" and line["level"] == "warning"
    assert line["instance"] == "ctl-1" and line["node_id"] == "loa-01"
    assert line["ts"].endswith("+00:00")
    try:
        raise ValueError("Lỗi")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "exc_info": __import__("sys").exc_info()})
    line = json.loads(formatter.format(record))
    assert "ValueError: Lỗi" in line["exception"]


def test_a_heartbeat_timeout_shorter_than_the_heartbeat_is_refused(tmp_path):
    with pytest.raises((ConfigError, ValueError), match="RADIO_OFFLINE_AFTER_S"):
        Settings(data_dir=tmp_path, demo=True, heartbeat_s=30, offline_after_s=20)
    assert Settings(data_dir=tmp_path, demo=True, log_format="json").log_format == "json"
