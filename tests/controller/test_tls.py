"""TLS: the controller and nodes reach Mosquitto over mqtts with the province's own CA, and the
API serves HTTPS with a configured certificate."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import aiomqtt
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware_sim.config import NodeConfig
from firmware_sim.fleet import Fleet
from protocol import SystemClock
from radio.tools import open_registry
from tests.conftest import Mosquitto, free_port, running_controller, wait_for, wait_port


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, as a province would issue."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Radio test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


async def test_controller_and_nodes_over_mqtts_and_api_over_https(
    make_settings, mosquitto_factory, tmp_path
):
    ca, cert, key = make_ca_and_cert(tmp_path / "pki")
    # Mosquitto with only a TLS listener, using the password and ACL files the registry writes.
    probe = make_settings()
    m = Mosquitto(tmp_path / "mosq", probe.broker_dir / "passwd", probe.broker_dir / "acl")
    conf = m.conf.read_text().replace(
        f"listener {m.port} 127.0.0.1",
        f"listener {m.port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}",
    )
    m.conf.write_text(conf)
    settings = make_settings(
        mqtt_url=f"mqtts://radio-controller:controller-secret-1@127.0.0.1:{m.port}",
        mqtt_ca_file=str(ca),
        broker_reload_command=f"pkill -HUP -f {m.conf}",
    )
    open_registry(settings).write_broker_files()
    m.start()
    try:
        async with running_controller(settings) as ctl:
            assert ctl.service.gateway.connected.is_set()
            await ctl.api("POST", "/areas", json={"id": "xa", "name": "Xã", "kind": "commune"})
            r = await ctl.api("POST", "/nodes", json={"id": "n1", "name": "Loa", "area_id": "xa"})
            prov = r.json()["provisioning"]
            # The CA itself, not the controller's path to it: the node has nothing else.
            assert prov["mqtt_url"].startswith("mqtts://") and prov["ca_pem"] == ca.read_text()
            fleet = Fleet([NodeConfig.model_validate(prov)], SystemClock())
            task = asyncio.create_task(fleet.run(display=False))
            try:
                await wait_for(lambda: fleet.summary().connected == 1, 20, "the node over TLS")
                node = (await ctl.api("GET", "/nodes/n1")).json()
                await wait_for(lambda: fleet.nodes[0].timeline_version >= 1, 20, "its timeline")
                assert node["id"] == "n1"
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        # A client that does not trust the province's CA is refused by the broker's TLS.
        bad = NodeConfig.model_validate({**prov, "ca_pem": None}).broker()
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                bad.host,
                bad.port,
                username=bad.username,
                password=bad.password,
                tls_context=bad.tls_context(),
            ):
                pass
    finally:
        m.stop()

    # HTTPS for the API, with the same certificate.
    from api.main import create_app
    from controller.service import RadioService

    https = make_settings(
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        http_port=free_port(),
        mqtt_embedded_port=free_port(),
        data_dir=tmp_path / "https",
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(RadioService(https)),
            host="127.0.0.1",
            port=https.http_port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.to_thread(wait_port, https.http_port)
        ctx = ssl.create_default_context(cafile=str(ca))
        async with httpx.AsyncClient(verify=ctx, timeout=60) as client:
            r = await client.get(f"https://127.0.0.1:{https.http_port}/api/v1/health")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
        async with httpx.AsyncClient(timeout=60) as client:  # the system's CAs do not know ours
            try:
                await client.get(f"https://127.0.0.1:{https.http_port}/api/v1/health")
                raise AssertionError("an untrusted certificate was accepted")
            except httpx.ConnectError:
                pass
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
