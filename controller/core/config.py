"""Settings of the controller, from RADIO_* environment variables and an optional TOML file."""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from controller.core.private_files import private_file
from controller.core.station_hosts import StationPolicy

CAP_FEED_SETTING = "RADIO_CAP_FEED_ALLOWED_HOSTS"

TIMEZONE = "Asia/Ho_Chi_Minh"
MIN_SECRET_KEY_CHARS = 32
MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# A CA bundle larger than this is not a CA bundle (a node keeps its file in memory).
MAX_CA_PEM_BYTES = 64 * 1024


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says which and how to fix it."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_wildcard_host(host: str) -> bool:
    """0.0.0.0, :: and the like: an address to listen on everywhere, which no node can reach."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host in ("", "0")


class Settings(BaseSettings):
    """Everything configurable. Defaults run on nothing but pip: SQLite, embedded broker."""

    model_config = SettingsConfigDict(env_prefix="RADIO_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    mqtt_url: str | None = Field(
        default=None, description="External broker, e.g. mqtt://user:pass@host:1883"
    )
    mqtt_ca_file: str | None = Field(
        default=None, description="CA that signed the broker's certificate (mqtts://)"
    )
    tls_cert_file: str | None = Field(default=None, description="Serve HTTPS with this cert")
    tls_key_file: str | None = None
    mqtt_embedded_host: str = Field(
        default="127.0.0.1", description="The address the embedded broker listens on"
    )
    # Not 1883, so that it never collides with a system Mosquitto on the same machine.
    mqtt_embedded_port: int = Field(default=18830, ge=0, le=65535)
    topic_prefix: str = "radio"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="Base URL nodes use to download media; default from http_*"
    )
    public_mqtt_host: str | None = Field(
        default=None,
        max_length=253,
        description="The broker's host as nodes reach it, written into provisioning files; "
        "default: the host of mqtt_url, or the embedded broker's address (the host of "
        "public_url when that address is 0.0.0.0 or ::)",
    )
    broker_reload_command: str | None = Field(
        default=None,
        description="Run when the broker's password/ACL files change ('pkill -HUP -x mosquitto')",
    )
    demo: bool = False
    secret_key: str = ""
    timeline_horizon_h: float = Field(default=24, gt=0, le=24 * 14)
    timeline_refresh_s: float = Field(default=300, gt=0)
    # Nodes on mobile data pay for every byte: a heartbeat every 10 minutes and a keep-alive
    # every 5 keep an idle node near 4 MB a month (docs/operations.md, "Mobile data").
    heartbeat_s: float = Field(default=600, gt=0)
    offline_after_s: float = Field(
        default=0, ge=0, description="0: three heartbeats (RADIO_HEARTBEAT_S × 3)"
    )
    node_keepalive_s: int = Field(
        default=300, ge=10, le=65535, description="The nodes' MQTT keep-alive, in seconds"
    )
    tts_engine: str = Field(default="espeak", description="espeak, gtts or piper")
    tts_voice: str = "vi"
    tts_fallback_engine: str | None = "espeak"
    tts_piper_model: str | None = None
    loudness_target_lufs: float = Field(default=-16.0, ge=-30, le=-10)
    true_peak_dbtp: float = Field(default=-1.5, ge=-6, le=0)
    mp3_bitrate_kbps: int = 48
    opening_chime: bool = Field(
        default=True, description="Open every spoken announcement with the chime"
    )
    max_text_chars: int = Field(default=5000, gt=0)
    upload_max_mb: float = Field(default=50, gt=0, le=1024)
    upload_max_duration_s: float = Field(default=1800, gt=0)
    media_retention_days: float = Field(default=7, gt=0)
    # Commands to nodes: how long to wait for an answer (a firmware update downloads and reboots).
    command_timeout_s: float = Field(default=30, gt=0, le=24 * 3600)
    firmware_timeout_s: float = Field(default=900, gt=0, le=24 * 3600)
    firmware_max_mb: float = Field(default=64, gt=0, le=1024)
    # Device health: telemetry history, alarms, notification, metrics (docs/operations.md).
    telemetry_full_days: float = Field(default=7, gt=0, le=366)
    telemetry_keep_days: float = Field(default=365, gt=0, le=3660)
    telemetry_rollup_s: float = Field(default=600, gt=0)
    ingest_node_rate: float = Field(
        default=1.0, gt=0, description="Heartbeats and states per second one node may send"
    )
    ingest_node_burst: int = Field(default=20, ge=1)
    flap_window_s: float = Field(default=600, gt=0)
    flap_changes: int = Field(default=6, ge=2, le=1000)
    alarm_check_s: float = Field(default=10, gt=0)
    alarm_offline_after_s: float = Field(default=300, ge=0)
    alarm_dead_air_grace_s: float = Field(default=120, ge=0)
    alarm_dead_air_lookback_h: float = Field(default=24, gt=0)
    alarm_low_battery_pct: int = Field(default=20, ge=0, le=100)
    alarm_over_temperature_c: float = Field(default=70, ge=-40, le=150)
    alarm_storage_low_mb: int = Field(default=100, ge=0)
    alarm_media_failures: int = Field(default=3, ge=1)
    alarm_media_window_s: float = Field(default=900, gt=0)
    alarm_clock_offset_ms: float = Field(
        default=50,
        gt=0,
        description="A node's clock further than this from the controller's (or, by its own "
        "time daemon, from true time) raises clock_offset: loudspeakers this far apart echo",
    )
    alarm_repeat_s: float = Field(default=3600, gt=0)
    webhook_url: str | None = Field(default=None, description="Alarms are POSTed here as JSON")
    webhook_timeout_s: float = Field(default=5, gt=0, le=120)
    webhook_retries: int = Field(default=4, ge=0, le=20)
    media_token_ttl_h: float = Field(
        default=72,
        gt=0,
        le=24 * 366,
        description="How long a node's media token lasts; nodes renew theirs before it ends",
    )
    metrics_token: str | None = Field(
        default=None, description="Bearer token a Prometheus scraper may use on /metrics"
    )
    # Live broadcasts and relays (docs/operations.md): the MP3 the controller streams to nodes.
    stream_bitrate_kbps: int = Field(default=64, ge=16, le=320)
    # Bulletins from upper levels' feeds (controller/bulletins/feeds.py); their hosts are
    # checked against stream_allowed_hosts, as stations are.
    bulletin_feed_poll_s: float = Field(
        default=300, ge=5, le=86400, description="How often followed bulletin feeds are read"
    )
    bulletin_feed_max_kb: int = Field(
        default=2048, ge=16, le=65536, description="The largest feed document read"
    )
    stream_allowed_hosts: str = Field(
        default="*",
        max_length=4000,
        description="Stations that stream entries may name and the controller may relay, "
        "comma-separated: host names (*.example.vn for every name under it), IP addresses, "
        "CIDR ranges; '*': any host at a public address. Loopback, private, CGNAT, "
        "link-local, ULA and multicast addresses only when listed as addresses or ranges",
    )
    # Followed CAP warning feeds (docs/operations.md, "Warning feeds"): the same host checks.
    cap_feed_allowed_hosts: str = Field(
        default="*",
        max_length=4000,
        description="Hosts the controller may poll for CAP warning feeds and the documents "
        "they link to; the same form as stream_allowed_hosts",
    )
    cap_feed_max_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    live_max_minutes: float = Field(default=60, gt=0, le=12 * 60)
    live_source_grace_s: float = Field(
        default=60, gt=0, le=3600, description="A live broadcast without a source this long ends"
    )
    log_format: Literal["text", "json"] = "text"
    prerender_alert_templates: bool = True
    console_tile_url: str | None = Field(
        default=None,
        max_length=500,
        description="Map tiles for the web console, e.g. https://tiles.example/{z}/{x}/{y}.png; "
        "unset: a plain grid that needs no internet",
    )
    trusted_proxies: str = Field(
        default="",
        max_length=2000,
        description="Addresses of the reverse proxies (nginx) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed, comma-separated (e.g. 127.0.0.1); unset: none, the "
        "connecting address is the client's",
    )
    instance: str = Field(default_factory=lambda: f"ctl-{secrets.token_hex(3)}")
    # Several instances against one PostgreSQL and one Mosquitto: each takes a share of the
    # node reports through `$share/<group>/…` subscriptions (MQTT 5 / Mosquitto; not amqtt).
    mqtt_shared_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The controller's state tells nodes they may send several events in one message. Off on
    # the new instances of a group while older ones (which refuse arrays) still take reports.
    mqtt_event_arrays: bool = True
    leader_retry_s: float = Field(default=3.0, gt=0, le=300)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("RADIO_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ConfigError(f"RADIO_CONFIG={config_file}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(c in v for c in "+#/ "):
            raise ValueError("topic_prefix must be one MQTT topic level without wildcards")
        return v

    @field_validator("stream_allowed_hosts")
    @classmethod
    def _stream_hosts(cls, v: str) -> str:
        StationPolicy.parse(v)  # a ValueError names the entry
        return v

    @cached_property
    def stations(self) -> StationPolicy:
        """`stream_allowed_hosts`, parsed."""
        return StationPolicy.parse(self.stream_allowed_hosts)

    @field_validator("cap_feed_allowed_hosts")
    @classmethod
    def _cap_feed_hosts(cls, v: str) -> str:
        StationPolicy.parse(v, CAP_FEED_SETTING)
        return v

    @cached_property
    def cap_feed_hosts(self) -> StationPolicy:
        """`cap_feed_allowed_hosts`, parsed."""
        return StationPolicy.parse(self.cap_feed_allowed_hosts, CAP_FEED_SETTING)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: str | None) -> str | None:
        if v:
            u = urlparse(v)
            if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
                raise ValueError("mqtt_url must look like mqtt://user:password@host:1883")
        return v

    @field_validator("public_mqtt_host")
    @classmethod
    def _public_mqtt_host(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v or any(c in v for c in "/@?# ") or (":" in v and not _is_ip(v)):
            raise ValueError(
                "public_mqtt_host must be a host name or an IP address only, e.g. 10.0.0.1 or "
                "broker.example.vn (no scheme, port or path)"
            )
        if is_wildcard_host(v):
            raise ValueError(
                f"public_mqtt_host {v!r} is an address to listen on, not one nodes can reach: "
                "give the controller's address on the nodes' network"
            )
        return v

    @model_validator(mode="after")
    def _heartbeat_timeout(self) -> Settings:
        if not self.offline_after_s:
            self.offline_after_s = 3 * self.heartbeat_s
        # Otherwise every node would be marked offline between two heartbeats, and flap.
        if self.offline_after_s <= self.heartbeat_s:
            raise ConfigError(
                f"RADIO_OFFLINE_AFTER_S ({self.offline_after_s:g}) must be longer than "
                f"RADIO_HEARTBEAT_S ({self.heartbeat_s:g}); three heartbeats is usual"
            )
        return self

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if not self.secret_key:
            if not self.demo:
                raise ConfigError(
                    "RADIO_SECRET_KEY is not set. Set it to a long random string "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                    "or run in demo mode with RADIO_DEMO=1."
                )
            # Demo mode keeps one random secret in the data directory, so node tokens stay valid
            # across restarts without anyone choosing a secret.
            path = self.data_dir / "secrets" / "demo-secret-key"
            if path.exists():
                self.secret_key = path.read_text().strip()
            else:
                self.secret_key = "demo-" + secrets.token_urlsafe(32)
                private_file(path).write_text(self.secret_key)
        elif len(self.secret_key) < MIN_SECRET_KEY_CHARS:
            # Also in demo mode: a secret someone chose is used as given, and a short one can
            # be guessed offline from any access or media token.
            raise ConfigError(
                f"RADIO_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters "
                f"(it has {len(self.secret_key)}); make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @cached_property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'radio.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def provisioning_dir(self) -> Path:
        return self.data_dir / "provisioning"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{self.http_host}:{self.http_port}"

    def node_mqtt_url(self) -> str:
        """The broker as nodes reach it, for provisioning files: scheme, host and port, never
        the login. ConfigError when the host would be an address no node can reach."""
        if self.mqtt_url:
            u = urlparse(self.mqtt_url)
            scheme, host = u.scheme, u.hostname or ""
            port, source = u.port or MQTT_PORTS[scheme], "the host of RADIO_MQTT_URL"
        else:
            scheme, host = "mqtt", self.mqtt_embedded_host
            port, source = self.mqtt_embedded_port, "RADIO_MQTT_EMBEDDED_HOST"
            if is_wildcard_host(host) and self.public_url:
                # Listening everywhere: nodes reach it where they reach the controller's HTTP.
                host = urlparse(self.public_url).hostname or host
                source = "the host of RADIO_PUBLIC_URL"
        if self.public_mqtt_host:
            host, source = self.public_mqtt_host, "RADIO_PUBLIC_MQTT_HOST"
        if is_wildcard_host(host):
            raise ConfigError(
                f"{source} is {host!r}, an address to listen on that no node can reach: set "
                "RADIO_PUBLIC_MQTT_HOST to the broker's address on the nodes' network "
                "(e.g. 10.0.0.1 or broker.example.vn)"
            )
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    def node_base_url(self) -> str:
        """`base_url`, for provisioning files: ConfigError when nodes could not reach it."""
        host = urlparse(self.base_url).hostname or ""
        if is_wildcard_host(host):
            raise ConfigError(
                f"the controller's address for nodes would be {self.base_url} (RADIO_HTTP_HOST "
                "listens everywhere): set RADIO_PUBLIC_URL to the address nodes use, e.g. "
                "http://10.0.0.1:8080"
            )
        return self.base_url

    def node_ca_pem(self) -> str | None:
        """The CA certificate(s) of a TLS broker, as PEM text for provisioning files: the
        content of RADIO_MQTT_CA_FILE, checked (a node cannot use the controller's path)."""
        if not self.mqtt_ca_file or urlparse(self.mqtt_url or "").scheme != "mqtts":
            return None
        where = f"RADIO_MQTT_CA_FILE={self.mqtt_ca_file}"
        try:
            with open(self.mqtt_ca_file, "rb") as f:
                data = f.read(MAX_CA_PEM_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
        if len(data) > MAX_CA_PEM_BYTES:
            raise ConfigError(f"{where}: larger than {MAX_CA_PEM_BYTES // 1024} KiB")
        if b"PRIVATE KEY" in data:  # it would be copied onto every node
            raise ConfigError(f"{where}: holds a private key; give the CA certificate only")
        try:
            pem = data.decode("ascii")
            ssl.create_default_context(cadata=pem)
        except (UnicodeDecodeError, ssl.SSLError, ValueError):
            pem = ""
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ConfigError(f"{where}: not a PEM certificate (-----BEGIN CERTIFICATE-----)")
        return pem

    def summary(self) -> dict[str, Any]:
        """What to print at start-up: never the secrets."""
        return {
            "data_dir": str(self.data_dir),
            "database": "postgresql" if self.database_url else "sqlite",
            "broker": "external" if self.mqtt_url else "embedded",
            "http": self.base_url,
            "demo": self.demo,
        }
