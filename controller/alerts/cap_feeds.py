"""Warning feeds on the wire: a followed address fetched with conditional requests through the
checked client (allowed hosts, every address checked, redirects checked), its bytes counted as
they arrive; an Atom or RSS index read into the CAP documents it names, or one CAP document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import defusedxml
import defusedxml.ElementTree as DET
import httpx

from controller.alerts.cap import NS, NS_11
from controller.core.station_hosts import StationPolicy, StationRefused, station_client

ATOM = "http://www.w3.org/2005/Atom"
RSS1 = "http://purl.org/rss/1.0/"
# Entries read from one index per poll; the rest wait for the next poll (a feed listing
# hundreds of warnings must not hold the poll for minutes).
MAX_ENTRIES = 100
ACCEPT = (
    "application/cap+xml, application/atom+xml, application/rss+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class FeedError(Exception):
    """A feed or a document it names could not be fetched or read; the message says why."""


@dataclass(frozen=True)
class Fetched:
    """An answer: 304 (nothing new, `body` empty) or 200 with the body and its validators."""

    status: int
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class IndexEntry:
    """One warning an index names: its address, or the CAP document the entry carries."""

    url: str
    document: bytes | None = None


def feed_client(policy: StationPolicy) -> httpx.AsyncClient:
    client = station_client(policy)
    client.headers["User-Agent"] = "commune-radio-cap-feed"
    client.headers["Accept"] = ACCEPT
    return client


def check_url(url: str, policy: StationPolicy) -> str | None:
    """Why a feed address is refused before any request (None: it may be followed; the
    addresses its name resolves to are checked at every request)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// addresses can be followed"
    if not parts.hostname:
        return "the address has no host"
    if parts.username or parts.password:
        return "the address must not carry a user name or password"
    return policy.precheck(parts.hostname)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 304:
                return Fetched(304, b"", etag, last_modified)
            if resp.status_code != 200:
                raise FeedError(f"{url} answered HTTP {resp.status_code}")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(f"{url} announces {declared} bytes; at most {max_bytes} are read")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FeedError(
                        f"{url} sent more than {max_bytes} bytes; the rest was not read"
                    )
            return Fetched(
                200, bytes(body), resp.headers.get("etag"), resp.headers.get("last-modified")
            )
    except StationRefused as exc:
        raise FeedError(f"{url} refused: {exc}") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"{url} could not be fetched: {type(exc).__name__} {exc}") from None


def read_index(body: bytes, base_url: str) -> list[IndexEntry] | None:
    """The warnings an Atom or RSS index names, newest first as listed; None when the body is
    itself a CAP document. DTDs and entities are refused, as for CAP documents."""
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException:
        raise FeedError("the feed declares a DTD or entities; refused unread") from None
    except ET.ParseError as err:
        raise FeedError(f"the feed is not well-formed XML ({err})") from None
    namespace, local = _name(root)
    if local == "alert":
        return None
    if namespace == ATOM and local == "feed":
        items = root.findall(f"{{{ATOM}}}entry")
        entries = [_atom_entry(item, base_url) for item in items]
    elif local == "rss":
        entries = [_rss_item(item, base_url, "") for item in root.iter("item")]
    elif local == "RDF":
        entries = [_rss_item(item, base_url, RSS1) for item in root.iter(f"{{{RSS1}}}item")]
    else:
        raise FeedError(
            f"the answer is <{local}>, neither an Atom or RSS feed nor a CAP <alert> document"
        )
    return [e for e in entries if e is not None][:MAX_ENTRIES]


def _name(elem: ET.Element) -> tuple[str, str]:
    tag = elem.tag
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _embedded(item: ET.Element) -> bytes | None:
    for elem in item.iter():
        namespace, local = _name(elem)
        if local == "alert" and namespace in (NS, NS_11):
            return bytes(ET.tostring(elem, encoding="utf-8"))
    return None


def _atom_entry(entry: ET.Element, base: str) -> IndexEntry | None:
    links = entry.findall(f"{{{ATOM}}}link")
    chosen = (
        next((link for link in links if "cap" in link.get("type", "")), None)
        or next((link for link in links if link.get("rel", "alternate") == "alternate"), None)
        or (links[0] if links else None)
    )
    href = (chosen.get("href") or "").strip() if chosen is not None else ""
    url = urljoin(base, href) if href else ""
    document = _embedded(entry)
    if document is None and not url:
        return None
    return IndexEntry(url, document)


def _rss_item(item: ET.Element, base: str, ns: str) -> IndexEntry | None:
    prefix = f"{{{ns}}}" if ns else ""
    href = ""
    for enclosure in item.iter("enclosure"):
        if "cap" in enclosure.get("type", "") or not href:
            href = (enclosure.get("url") or "").strip()
    if not href:
        link = item.find(f"{prefix}link")
        href = (link.text or "").strip() if link is not None else ""
    url = urljoin(base, href) if href else ""
    document = _embedded(item)
    if document is None and not url:
        return None
    return IndexEntry(url, document)
