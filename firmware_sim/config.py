"""The node's provisioning file: identity, broker, trusted controller and root keys, media token."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocol import load_public_key, valid_id

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class NodeConfigError(ValueError):
    """A provisioning file that cannot work; the message names the file and the field."""


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: str | None = None
    ca_pem: str | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        # A private CA (the province's own) is given in the provisioning file; else the system's.
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_pem)


class NodeConfig(BaseModel):
    """One loudspeaker node as provisioned.

    Unknown keys are ignored: the controller writes these files and may add fields first.
    """

    model_config = ConfigDict(extra="ignore")

    node_id: str
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    topic_prefix: str = "radio"
    areas: list[str] = Field(default_factory=list, max_length=32)
    controller_keys: list[str] = Field(default_factory=list, max_length=8)
    # Keys that sign key announcements only (rotation); see docs/security.md.
    root_keys: list[str] = Field(default_factory=list, max_length=4)
    # The key set the controller_keys belong to: older announcements are refused as stale.
    key_serial: int = Field(default=0, ge=0)
    media_token: str = ""
    # Where a fresh media token is asked for (with the broker login) before this one ends.
    media_token_url: str | None = Field(default=None, max_length=2000)
    firmware: str = Field(default="sim-1.0.0", max_length=200)
    heartbeat_s: float = Field(default=30, gt=0)
    # The MQTT keep-alive: the node pings the broker after this long without sending anything,
    # and the broker gives up on it (its last will: `lost`) after one and a half times this.
    keepalive_s: int = Field(default=60, ge=10, le=65535)
    cache_dir: str | None = None
    # The broker's CA for mqtts://: its PEM text as the controller writes it, and/or a path on
    # this device a technician gives; both are trusted. Neither: the system's CAs.
    ca_pem: str | None = Field(default=None, max_length=65536)
    ca_file: str | None = None
    # MQTT client id; defaults to node_id. Distinct ids let test runs share one broker.
    client_id: str | None = Field(default=None, max_length=128)
    # A real loudspeaker (single-node mode): the sound card to play through, e.g. "default",
    # "hw:1,0" or "null"; unset, the node is simulated. Backend: "alsa", "pulseaudio", "null".
    audio_device: str | None = Field(default=None, max_length=200)
    audio_backend: Literal["alsa", "pulseaudio", "null"] = "alsa"
    # Where the heartbeat's readings come from: "machine" (a real node: read from this
    # computer, unknown where it offers none) or "simulated" (the simulator's scenarios).
    # Unset: machine in single-node mode, simulated otherwise.
    health: Literal["machine", "simulated"] | None = None
    # Hooks of a real node (docs/node-install.md, "Health"): a command printing the power
    # state as JSON, and check commands for the speaker and the amplifier (exit 0: fine).
    power_command: str | None = Field(default=None, max_length=1000)
    speaker_check_command: str | None = Field(default=None, max_length=1000)
    amplifier_check_command: str | None = Field(default=None, max_length=1000)
    # Firmware updates of a real node (docs/node-install.md, "Firmware updates"): releases are
    # unpacked under install_dir/releases/<version>/, install_dir/current is switched to the new
    # one and restart_command restarts the service; the new version must come online within
    # update_confirm_s or the previous release is restored and restarted. Unset: the update is
    # kept in the cache directory and the node reconnects with it (the simulator's way).
    install_dir: str | None = Field(default=None, max_length=1000)
    restart_command: str | None = Field(default=None, max_length=1000)
    update_confirm_s: float = Field(default=120, gt=0, le=3600)

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, value: str) -> str:
        if not valid_id(value):
            raise ValueError("must match ^[a-z0-9][a-z0-9_.-]{0,63}$")
        return value

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not valid_id(a)]
        if bad:
            raise ValueError(f"invalid area ids {bad}")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or "+" in value or "#" in value:
            raise ValueError("must be non-empty without MQTT wildcards")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        _ = parsed.port  # raises ValueError on a non-numeric or out-of-range port
        return value

    @field_validator("ca_pem")
    @classmethod
    def _ca_pem(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if "-----BEGIN CERTIFICATE-----" not in value:
                    raise ValueError
                ssl.create_default_context(cadata=value)
            except (ssl.SSLError, ValueError):
                raise ValueError(
                    "must be PEM CA certificates (-----BEGIN CERTIFICATE-----)"
                ) from None
        return value

    @field_validator("controller_keys", "root_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for i, key in enumerate(value):
            try:
                load_public_key(key)
            except ValueError as exc:
                raise ValueError(f"key {i} is not a base64 Ed25519 public key: {exc}") from None
        return value

    def broker(self) -> BrokerEndpoint:
        """Host, port and credentials; explicit username/password win over URL userinfo."""
        parsed = urlparse(self.mqtt_url)
        username = self.username or (unquote(parsed.username) if parsed.username else None)
        password = self.password or (unquote(parsed.password) if parsed.password else None)
        return BrokerEndpoint(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or _DEFAULT_PORTS[parsed.scheme],
            tls=parsed.scheme == "mqtts",
            username=username,
            password=password,
            ca_file=self.ca_file,
            ca_pem=self.ca_pem,
        )


def load_config(path: str | Path) -> NodeConfig:
    """Read one provisioning JSON file; NodeConfigError says what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NodeConfigError(f"{path}: cannot read provisioning file: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NodeConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NodeConfigError(f"{path}: expected a JSON object")
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise NodeConfigError(f"{path}: {problems}") from None
