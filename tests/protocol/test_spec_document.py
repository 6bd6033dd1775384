"""docs/protocol.md against the code: its JSON examples validate against the published schemas,
its links lead to its own sections, every event type, command, refusal reason and node-relevant
setting of the code is in it, and the settings it names exist with the defaults it gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from controller.core.config import Settings
from protocol import CommandName, EventType

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
INSTALL = ROOT / "docs" / "node-install.md"
SCHEMAS = ROOT / "docs" / "schemas"


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    doc = text()
    start = doc.index(f"\n## {title}\n")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end != -1 else len(doc)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    heading = heading.strip().lower().replace("`", "")
    heading = re.sub(r"[^\w\- ]", "", heading)
    return heading.replace(" ", "-")


def examples() -> list[tuple[str, str]]:
    """(schema name, JSON text) of every example marked `<!-- schema: name -->`."""
    found = re.findall(r"<!-- schema: ([a-z-]+) -->\n```json\n(.*?)\n```", text(), re.S)
    return [(name, body) for name, body in found]


def test_there_are_marked_examples_for_every_payload_a_node_handles() -> None:
    names = {name for name, _ in examples()}
    assert names >= {
        "provisioning",
        "controller-state",
        "node-state",
        "envelope",
        "key-set-body",
        "timeline-body",
        "alert-body",
        "command-body",
        "command-ack",
        "telemetry",
        "node-event",
    }


@pytest.mark.parametrize(("name", "example"), examples(), ids=[n for n, _ in examples()])
def test_each_marked_example_validates_against_its_schema(name: str, example: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    data = json.loads(example)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert errors == [], f"the {name} example in docs/protocol.md: {errors}"


def test_every_link_to_a_section_leads_to_one() -> None:
    doc = text()
    anchors = {slug(h) for h in re.findall(r"^#{1,4} (.+)$", doc, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", doc))
    assert links, "no links to sections"
    assert links <= anchors, f"links to no section: {sorted(links - anchors)}"
    for name in re.findall(r"\]\((schemas/[^)#]+|vectors/[^)#]+|[a-z-]+\.md)\)", doc):
        assert (DOC.parent / name).is_file(), name


def test_the_thirteen_questions_each_point_to_an_answer() -> None:
    questions = section("Questions implementers asked")
    rows = re.findall(r"^\| (\d+) \| (.+?) \| (.+) \|$", questions, re.M)
    assert [int(n) for n, _, _ in rows] == list(range(1, 14))
    for _, _, where in rows:
        assert "](#" in where
    assert "RADIO_MQTT_EMBEDDED_PORT" in section("Settings that concern nodes")


def test_the_diagrams_are_there() -> None:
    doc = text()
    assert doc.count("```mermaid\nsequenceDiagram") >= 5  # broadcast, alert, command, keys, restart
    assert doc.count("```mermaid\nstateDiagram-v2") >= 1
    for title in ("Key announcements", "Timeline", "Emergency alerts", "Commands", "Restarts"):
        assert "sequenceDiagram" in section(title), title


def test_every_event_type_and_command_is_documented() -> None:
    events = section("Node events") + section("Streams (relays and live broadcasts)")
    for kind in EventType:
        assert f"`{kind.value}`" in events or kind.value.startswith("stream_"), kind
        assert f"`{kind.value}`" in text(), kind
    commands = section("Commands")
    for name in CommandName:
        assert f"| `{name.value}` |" in commands, name


def test_every_reason_the_node_refuses_for_is_documented() -> None:
    code = "".join(
        p.read_text(encoding="utf-8")
        for p in [*(ROOT / "firmware_sim").glob("*.py"), *(ROOT / "protocol").glob("*.py")]
    )
    reasons = set(re.findall(r"reject\(\s*\"(\w+)\"", code))
    reasons |= set(re.findall(r"RejectedMessage\(\s*\"(\w+)\"", code))
    # The key set's and the replay state's refusals (`refusal()` returns the reason).
    refusals = "".join((ROOT / "protocol" / f).read_text() for f in ("keyset.py", "replay.py"))
    reasons |= set(re.findall(r"return \"(\w+)\"(?: if|$)", refusals, re.M))
    assert {"stale", "wrong_area", "replayed", "retired_key", "too_large"} <= reasons
    documented = section("Rejected messages") + section("Checking an envelope")
    missing = sorted(r for r in reasons if f"`{r}`" not in documented)
    assert missing == [], f"refusal reasons not in docs/protocol.md: {missing}"


# The controller's settings whose values reach nodes (in provisioning files, URLs, deadlines).
NODE_SETTINGS = {
    "mqtt_url",
    "mqtt_embedded_host",
    "mqtt_embedded_port",
    "mqtt_ca_file",
    "public_mqtt_host",
    "topic_prefix",
    "public_url",
    "heartbeat_s",
    "node_keepalive_s",
    "offline_after_s",
    "media_token_ttl_h",
    "secret_key",
    "timeline_horizon_h",
    "timeline_refresh_s",
    "command_timeout_s",
    "firmware_timeout_s",
    "ingest_node_rate",
    "ingest_node_burst",
    "alarm_clock_offset_ms",
}


def test_node_settings_are_documented_with_their_real_defaults() -> None:
    table = section("Settings that concern nodes")
    documented: dict[str, str] = {}
    for names, default in re.findall(r"^\| ((?:`RADIO_\w+`(?:, )?)+) \| ([^|]+) \|", table, re.M):
        keys = re.findall(r"`RADIO_(\w+)`", names)
        values = re.findall(r"`([^`]*)`", default)
        for i, key in enumerate(keys):
            documented[key.lower()] = values[i] if len(values) == len(keys) else default.strip()
    assert set(documented) >= NODE_SETTINGS, sorted(NODE_SETTINGS - set(documented))
    for name, shown in documented.items():
        assert name in Settings.model_fields, f"RADIO_{name.upper()} is no setting"
        real = Settings.model_fields[name].default
        if shown.startswith(("unset", "none")):
            assert real in (None, ""), name
        elif isinstance(real, bool):
            assert shown == str(real).lower(), (name, shown, real)
        elif not shown.startswith("http"):
            assert shown == str(real) or float(shown) == real, (name, shown, real)


def test_every_setting_the_node_documents_name_exists() -> None:
    for path in (DOC, INSTALL):
        for name in set(re.findall(r"RADIO_([A-Z_]+[A-Z])", path.read_text(encoding="utf-8"))):
            if name in ("CONFIG",):
                continue  # the TOML file's path, read before the settings
            assert name.lower() in Settings.model_fields, f"{path.name}: RADIO_{name}"
