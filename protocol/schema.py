"""Writes the JSON Schemas of protocol v1 into docs/schemas (run: python -m protocol.schema)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from protocol.keyset import KeySetBody
from protocol.messages import (
    AlertBody,
    CommandAck,
    CommandBody,
    ControllerState,
    FirmwareUpdate,
    NodeEvent,
    NodeState,
    Telemetry,
    TimelineBody,
)
from protocol.signing import Envelope

MODELS: dict[str, Any] = {
    "envelope": Envelope,
    "controller-state": ControllerState,
    "node-state": NodeState,
    "telemetry": Telemetry,
    "node-event": NodeEvent,
    "timeline-body": TimelineBody,
    "command-body": CommandBody,
    "command-ack": CommandAck,
    "firmware-update": FirmwareUpdate,
    "alert-body": AlertBody,
    "key-set-body": KeySetBody,
}


def schemas() -> dict[str, str]:
    return {
        name: json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
        for name, model in MODELS.items()
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/schemas")
    for p in write(target):
        print(p)
