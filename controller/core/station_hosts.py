"""Which stations may be relayed, and the HTTP client the controller pulls them with.

A station's address is written into a playlist by whoever may write playlists. Fetched
unchecked, it would make the controller a probe of its own network: its API on 127.0.0.1, the
router's admin page, a cloud's metadata service at 169.254.169.254, each answering with its own
error. So:

- the administrator lists the station hosts (`RADIO_STREAM_ALLOWED_HOSTS`): host names
  (`radio.vov.vn`; `*.vov.vn` for every name under it), IP addresses and CIDR ranges, or `*` for
  any host at a public address (the default);
- an address that is not public (loopback, RFC 1918, CGNAT, link-local, ULA, multicast,
  unspecified, reserved, documentation, and IPv6 forms that carry one of these) is refused
  unless it lies in a listed address or range, whatever name led to it;
- the check is made on every address the name resolves to, for every request (redirects and
  HLS segments included), and the connection goes to an address that was checked, never to a
  second resolution of the name (DNS rebinding between check and connect cannot slip through);
- ffmpeg never opens a URL: the relay reads the station with this client and feeds the bytes to
  ffmpeg's input (`controller/live/relays.py`).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

SETTING = "RADIO_STREAM_ALLOWED_HOSTS"
MAX_REDIRECTS = 5
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")

# Never a station unless listed: what `is_global` misses (multicast, 6to4 and NAT64 forms of
# private addresses) is spelled out, and `is_global` catches what this list forgets.
NOT_PUBLIC: tuple[IPNetwork, ...] = tuple(
    ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",  # ULA
        "fe80::/10",  # link-local
        "fec0::/10",
        "ff00::/8",  # multicast
    )
)
NAT64 = ip_network("64:ff9b::/96")


class StationRefused(Exception):
    """The controller may not connect to this station (the message is for the log only)."""


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    if any(ip.version == net.version and ip in net for net in NOT_PUBLIC):
        return False
    return ip.is_global and not ip.is_multicast


def literal_ip(host: str) -> IPAddress | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class StationPolicy:
    """The administrator's list of station hosts (`RADIO_STREAM_ALLOWED_HOSTS`)."""

    any_public: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".vov.vn" for "*.vov.vn"
    networks: tuple[IPNetwork, ...] = ()
    setting: str = SETTING  # the setting it was read from, named in refusals

    @classmethod
    def parse(cls, text: str, setting: str = SETTING) -> StationPolicy:
        """`*`, host names, `*.domain`, IP addresses and CIDR ranges, comma-separated."""
        any_public = False
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = normal_host(raw)
            if not entry:
                continue
            if entry == "*":
                any_public = True
                continue
            try:
                networks.append(ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not _NAME.match(name) or len(name) > 253:
                raise ValueError(
                    f"{setting}: {raw.strip()!r} is not a host name, *.domain, an IP address "
                    "or a CIDR range"
                )
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                names.add(name)
        return cls(any_public, frozenset(names), tuple(suffixes), tuple(networks), setting)

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def _named(self, host: str) -> bool:
        return host in self.names or host.endswith(self.suffixes)

    def refusal(self, host: str, addresses: Sequence[IPAddress]) -> str | None:
        """Why the controller may not connect to `host` at `addresses` (None: it may)."""
        host = normal_host(host)
        if not addresses:
            return f"{host} has no address"
        for ip in addresses:
            if not self._listed(ip) and not is_public(ip):
                return f"{host} is at {ip}, which is not public and not in {self.setting}"
        if self.any_public or all(self._listed(ip) for ip in addresses):
            return None
        if literal_ip(host) is None and self._named(host):
            return None
        return f"{host} is not in {self.setting}"

    def precheck(self, host: str) -> str | None:
        """What can be said of a host without resolving it (when a playlist is written); the
        addresses it resolves to are checked when the controller connects."""
        host = normal_host(host)
        literal = literal_ip(host)
        if literal is not None:
            return self.refusal(host, [literal])
        if self.any_public or self.networks or self._named(host):
            return None
        return f"{host} is not in {self.setting}"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` stands for (a literal address stands for itself)."""
    literal = literal_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


class CheckedTransport(httpx.AsyncBaseTransport):
    """Each request resolves its host, checks every address, and connects to a checked one.

    The request goes out to the address itself, with the name in `Host` and, for https, in
    SNI and the certificate check (httpx's `sni_hostname`). No connection is kept for reuse,
    so one made for a name is never taken for another at the same address."""

    def __init__(self, policy: StationPolicy, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.resolver = resolver
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_keepalive_connections=0), retries=0
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise StationRefused(f"{url.scheme}:// is not http or https")
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self.resolver(host, port)
        why = self.policy.refusal(host, addresses)
        if why is not None:
            raise StationRefused(why)
        extensions = dict(request.extensions)
        if url.scheme == "https" and literal_ip(host) is None:
            extensions["sni_hostname"] = host
        failure: httpx.ConnectError | None = None
        for ip in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(ip)),
                headers=request.headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        await self._inner.aclose()


def station_client(policy: StationPolicy, resolver: Resolver = resolve) -> httpx.AsyncClient:
    """The controller's client for stations: checked addresses only, at most five redirects
    (each checked like the first), no proxy from the environment, a station silent for 10 s
    is gone."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy, resolver),
        trust_env=False,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx.Timeout(10.0, connect=5.0),
        headers={"User-Agent": "commune-radio-relay", "Accept-Encoding": "identity"},
    )
