"""Relayed stations are no way into the controller's network (issue 17, item 6).

A stream entry names an address; a `via_controller` entry makes the controller fetch it. Without
the administrator's allow-list (`stream_allowed_hosts`), loopback, private, link-local and other
non-public addresses are refused — when the entry is written (literal addresses) and whenever the
controller connects (after resolving the name, and on every redirect) — and whoever asks for the
relay learns a code, never what the network or ffmpeg said.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from ipaddress import ip_address
from typing import Any

import httpx
import pytest
from sqlmodel import select

from controller.core.config import Settings
from controller.core.models import PlaylistItem
from controller.core.station_hosts import StationPolicy, is_public, station_client
from controller.live.relays import SAYS
from tests.conftest import RunningController, running_controller
from tests.controller.test_broadcast_e2e import make_commune
from tests.stream_station import Station

HOST = "stream_host_not_allowed"
UNREACHABLE = "stream_unreachable"
NOT_AUDIO = "stream_not_audio"


class Server:
    """A bare HTTP server on one address that records the requests it gets."""

    def __init__(self, host: str, answer: Callable[[str], bytes], hold: bool = False) -> None:
        self.host = host
        self.answer = answer
        self.hold = hold  # keep the connection open after answering (a stream that stalls)
        self.requests: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/live.mp3") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            self.requests.append(head)
            writer.write(self.answer(head.split(" ", 2)[1]))
            await writer.drain()
            if self.hold:
                await reader.read()
        writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def redirect_to(target: str) -> Callable[[str], bytes]:
    return lambda _path: (
        f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode()
    )


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    s = await Station("mp3", kbps=64).start()
    yield s
    await s.close()


async def relay_entry(ctl: RunningController, url: str) -> int:
    """A relayed stream entry (written at an address any check passes, then pointed at `url`
    in the database: an entry from before the allow-list, or from a wider one since narrowed)."""
    entry = {
        "kind": "stream",
        "url": "http://radio.example.vn/live.mp3",
        "duration_ms": 6000,
        "via_controller": True,
    }
    r = await ctl.api("POST", "/playlists", json={"title": "Tiếp sóng", "items": [entry]})
    assert r.status_code == 201, r.text
    with ctl.service.db.session() as s:
        row = s.exec(select(PlaylistItem).where(PlaylistItem.playlist_id == r.json()["id"])).one()
        row.stream_url = url
        s.add(row)
        s.commit()
        assert row.id is not None
        return row.id


async def listen(ctl: RunningController, token: str, entry_id: int) -> httpx.Response:
    """The relay as a node asks for it: the first audio, or the refusal."""
    url = f"{ctl.base_url}/media/relay/{entry_id}.mp3"
    auth = {"Authorization": f"Bearer {token}"}
    async with ctl.http.stream("GET", url, headers=auth, timeout=30) as r:
        if r.status_code == 200:
            async for _chunk in r.aiter_bytes():
                break  # audio flows
        else:
            await r.aread()
        return r


def refused_with(r: httpx.Response, code: str) -> None:
    """A 503 that says the code and its fixed words, nothing of the station or of ffmpeg."""
    assert r.status_code == 503, r.status_code
    assert r.json() == {"detail": SAYS[code], "code": code}


# --- which addresses ----------------------------------------------------------------------------

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "169.254.169.254",  # cloud metadata
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd12:3456::1",  # ULA
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused_unless_listed(address: str):
    ip = ip_address(address)
    assert not is_public(ip)
    assert StationPolicy.parse("*").refusal("station.example.vn", [ip]) is not None
    assert StationPolicy.parse("*").precheck(address) is not None
    # A public address beside it does not make it pass: every address must be allowed.
    assert StationPolicy.parse("*").refusal("x.vn", [ip_address("8.8.8.8"), ip]) is not None
    listed = StationPolicy.parse(f"{address}/{ip.max_prefixlen}")
    assert listed.refusal(address, [ip]) is None


def test_the_allow_list_names_hosts_and_ranges():
    public = [ip_address("203.162.4.190")]
    assert is_public(public[0]) and is_public(ip_address("2001:ee0:1::1"))
    assert StationPolicy.parse("*").refusal("radio.vov.vn", public) is None
    named = StationPolicy.parse("radio.vov.vn, *.vtv.vn.")
    assert named.refusal("radio.vov.vn", public) is None
    assert named.refusal("Live.VTV.vn", public) is None
    assert named.refusal("evil.example.com", public) is not None
    assert named.precheck("evil.example.com") is not None
    assert named.precheck("radio.vov.vn") is None
    # A listed name that resolves to a private address is still refused; a listed range allows.
    assert named.refusal("radio.vov.vn", [ip_address("10.0.0.8")]) is not None
    lan = StationPolicy.parse("192.168.5.0/24")
    assert lan.refusal("studio.lan", [ip_address("192.168.5.20")]) is None
    assert lan.refusal("studio.lan", [ip_address("192.168.6.20")]) is not None
    assert lan.refusal("radio.vov.vn", public) is not None  # only what is listed
    assert StationPolicy.parse("").refusal("radio.vov.vn", public) is not None
    for bad in ("http://radio.vov.vn", "radio vov", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="RADIO_STREAM_ALLOWED_HOSTS"):
            Settings(demo=True, stream_allowed_hosts=bad)


async def test_the_client_connects_to_the_address_it_checked(station: Station):
    """A name the system cannot resolve reaches the station at the address the check saw: the
    connection never resolves the name a second time."""
    seen: list[str] = []

    async def resolver(host: str, port: int) -> list[Any]:
        seen.append(host)
        return [ip_address("127.0.0.1")]

    url = f"http://radio.invalid:{station.port}/live.mp3"
    async with station_client(StationPolicy.parse("127.0.0.1"), resolver) as http:
        async with http.stream("GET", url) as r:
            assert r.status_code == 200
            async for _chunk in r.aiter_bytes():
                break
    assert seen == ["radio.invalid"]
    assert f"host: radio.invalid:{station.port}" in station.requests[-1].decode().lower()


# --- through the controller -----------------------------------------------------------------------


async def test_stream_entries_at_non_public_addresses_are_refused_when_written(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        for url in (
            "http://127.0.0.1:8080/api/v1/ready",
            "http://10.0.0.5/live.mp3",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/live.mp3",
            "http://0.0.0.0:8080/live.mp3",
        ):
            for via in (True, False):
                entry = {"kind": "stream", "url": url, "duration_ms": 5000, "via_controller": via}
                r = await ctl.api("POST", "/playlists", json={"title": "x", "items": [entry]})
                assert r.status_code == 422, (url, r.text)
                assert r.json()["code"] == "stream_host_not_allowed", r.text


async def test_relays_to_non_public_addresses_are_refused_without_connecting(
    make_settings, station: Station
):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 1)
        token = configs[0].media_token
        for url in (
            station.url,  # a real service on 127.0.0.1
            f"http://localhost:{station.port}/live.mp3",  # a name for it
            "http://10.255.255.1/live.mp3",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]:8080/",
        ):
            refused_with(await listen(ctl, token, await relay_entry(ctl, url)), HOST)
        assert station.connections == 0


async def test_a_redirect_to_a_non_public_address_is_refused(make_settings, station: Station):
    async with (
        Server("127.0.0.2", lambda _p: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as trap,
        Server("127.0.0.1", redirect_to(trap.url())) as to_trap,
        Server("127.0.0.1", redirect_to("http://169.254.169.254/latest/meta-data/")) as to_cloud,
        Server("127.0.0.1", redirect_to(station.url)) as to_station,
        running_controller(make_settings(stream_allowed_hosts="127.0.0.1")) as ctl,
    ):
        configs = await make_commune(ctl, 1)
        token = configs[0].media_token
        refused_with(await listen(ctl, token, await relay_entry(ctl, to_trap.url())), HOST)
        refused_with(await listen(ctl, token, await relay_entry(ctl, to_cloud.url())), HOST)
        assert len(to_trap.requests) == 1 and len(to_cloud.requests) == 1
        assert trap.requests == []  # 127.0.0.2 is loopback, but not the listed 127.0.0.1
        # A redirect to an allowed station is followed: the local station relays.
        r = await listen(ctl, token, await relay_entry(ctl, to_station.url()))
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
        assert station.connections == 1


async def test_callers_learn_only_unreachable_or_not_audio(make_settings):
    html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 23\r\n\r\n<h1>Router login</h1>\r\n"
    junk = (
        b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n" + b"SSH-2.0-OpenSSH_9.2\r\n" * 20_000
    )
    async with (
        Server("127.0.0.1", lambda _p: html) as page,
        Server("127.0.0.1", lambda _p: junk, hold=True) as not_mp3,
        Server(
            "127.0.0.1", lambda _p: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        ) as missing,
        running_controller(make_settings(stream_allowed_hosts="127.0.0.1")) as ctl,
    ):
        configs = await make_commune(ctl, 1)
        token = configs[0].media_token
        closed = Server("127.0.0.1", redirect_to("/"))
        async with closed:
            nothing_there = closed.url()  # the port is closed again below
        refused_with(await listen(ctl, token, await relay_entry(ctl, nothing_there)), UNREACHABLE)
        refused_with(await listen(ctl, token, await relay_entry(ctl, missing.url())), UNREACHABLE)
        refused_with(await listen(ctl, token, await relay_entry(ctl, page.url())), NOT_AUDIO)
        refused_with(await listen(ctl, token, await relay_entry(ctl, not_mp3.url())), NOT_AUDIO)


async def test_an_allowed_hls_station_relays_segment_by_segment(make_settings):
    """HLS is read by the controller's client too (playlist and every segment checked), and
    only the audio goes into ffmpeg."""
    station = await Station("hls", kbps=48).start()
    try:
        async with running_controller(make_settings(stream_allowed_hosts="127.0.0.1")) as ctl:
            configs = await make_commune(ctl, 1)
            entry = {
                "kind": "stream",
                "url": station.url,
                "duration_ms": 6000,
                "via_controller": True,
            }
            r = await ctl.api("POST", "/playlists", json={"title": "HLS", "items": [entry]})
            assert r.status_code == 201, r.text
            assert r.json()["items"][0]["format"] == "hls"
            with ctl.service.db.session() as s:
                row = s.exec(
                    select(PlaylistItem).where(PlaylistItem.playlist_id == r.json()["id"])
                ).one()
            assert row.id is not None
            r = await listen(ctl, configs[0].media_token, row.id)
            assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
            paths = [req.split(b" ", 2)[1] for req in station.requests]
            assert paths[0] == b"/live.m3u8" and any(p.endswith(b".ts") for p in paths)
    finally:
        await station.close()
