"""docs/schemas/provisioning.schema.json against the real thing: the files the controller writes
validate (before and after a key rotation, plain and TLS), the schema names exactly the members
the node's model reads with the same defaults, and what the node refuses the schema refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from firmware_sim.config import NodeConfig
from tests.controller.test_node_cli import Radio
from tests.controller.test_tls import make_ca_and_cert

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "provisioning.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, data: dict[str, Any]) -> list[str]:
    return [e.message for e in validator.iter_errors(data)]


def test_the_files_the_controller_writes_validate(tmp_path: Path, validator) -> None:
    radio = Radio(tmp_path)
    radio.commune()
    radio("node", "add", "loa-01", "--name", "Loa cổng UBND", "--area", "thon-1")
    first = radio.provisioning("loa-01")
    assert errors(validator, first) == []
    assert first["areas"] == ["thon-1", "xa-a"] and first["key_serial"] == 0
    assert len(first["root_keys"]) == 1 and len(first["controller_keys"]) == 1
    # The default periods, as whole numbers (a node may read them as integers).
    assert first["heartbeat_s"] == 600 and type(first["heartbeat_s"]) is int
    assert first["keepalive_s"] == 300

    # After a rotation the file carries both keys of the grace period and the new serial.
    radio("keys", "rotate", "--switch-in", "600", "--retire-after", "86400")
    radio("node", "add", "loa-02", "--name", "Loa chợ", "--area", "thon-1")
    rotated = radio.provisioning("loa-02")
    assert errors(validator, rotated) == []
    assert rotated["key_serial"] == 1 and len(rotated["controller_keys"]) == 2

    # A controller behind a TLS broker (its port left to the default) with a private CA.
    ca, _, _ = make_ca_and_cert(tmp_path / "pki")
    tls = Radio(
        tmp_path / "tls",
        RADIO_MQTT_URL="mqtts://radio-controller:secret@broker.example.vn",
        RADIO_MQTT_CA_FILE=str(ca),
        RADIO_PUBLIC_URL="https://radio.example.vn",
    )
    tls.commune()
    tls("node", "add", "loa-03", "--name", "Loa 3", "--area", "thon-1")
    secure = tls.provisioning("loa-03")
    assert errors(validator, secure) == []
    assert secure["mqtt_url"] == "mqtts://broker.example.vn:8883"
    assert secure["ca_pem"] == ca.read_text()
    assert secure["media_token_url"] == "https://radio.example.vn/media/token"

    for prov in (first, rotated, secure):
        NodeConfig.model_validate(prov)  # and the node takes every one of them
        # Unknown members are allowed by both (the controller may add fields first).
        assert errors(validator, {**prov, "later_field": {"x": 1}}) == []
        NodeConfig.model_validate({**prov, "later_field": {"x": 1}})


def test_the_schema_names_the_node_models_members_with_its_defaults(validator) -> None:
    properties = validator.schema["properties"]
    assert set(properties) == set(NodeConfig.model_fields)
    for name, field in NodeConfig.model_fields.items():
        if field.is_required():
            assert "default" not in properties[name], name
        else:
            assert properties[name].get("default", "absent") == field.get_default(
                call_default_factory=True
            ), name
    assert set(validator.schema["required"]) <= set(properties)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("node_id", "Loa 1!"),
        ("node_id", "x" * 65),
        ("mqtt_url", "http://broker:1883"),
        ("mqtt_url", "mqtt://"),
        ("topic_prefix", "radio/#"),
        ("areas", ["Thôn 1"]),
        ("areas", ["a"] * 33),
        ("controller_keys", ["not a key"]),
        ("root_keys", ["AAAA"]),
        ("key_serial", -1),
        ("heartbeat_s", 0),
        ("keepalive_s", 5),
        ("keepalive_s", 70000),
        ("audio_backend", "oss"),
        ("health", "invented"),
        ("firmware", "v" * 201),
        ("ca_pem", "not a certificate"),
        ("ca_pem", ""),
    ],
)
def test_what_the_node_refuses_the_schema_refuses(
    tmp_path: Path, validator, member: str, value: Any
) -> None:
    good = {
        "node_id": "loa-01",
        "mqtt_url": "mqtt://10.0.0.1:18830",
        "username": "loa-01",
        "password": "p",
        "topic_prefix": "radio",
        "areas": ["thon-1"],
        "controller_keys": ["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
        "root_keys": [],
        "key_serial": 0,
        "media_token": "",
        "media_token_url": None,
        "firmware": "1.0.0",
        "heartbeat_s": 30,
        "keepalive_s": 300,
        "ca_pem": None,
    }
    assert errors(validator, good) == []
    NodeConfig.model_validate(good)
    bad = {**good, member: value}
    assert errors(validator, bad), f"the schema takes {member}={value!r}"
    with pytest.raises(ValueError):
        NodeConfig.model_validate(bad)
