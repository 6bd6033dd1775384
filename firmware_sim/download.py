"""The node's one way to download a file over HTTP: timeline media, alert media, firmware images.

Every download (`Downloader.fetch`):

- carries the node's token only to the controller's own URLs (`MediaToken`, an `httpx.Auth`:
  the scheme, host and port of the provisioned `media_token_url`) and follows no redirect;
- renews the token once when the controller refuses it (401), and tries again;
- refuses a `Content-Length` above its cap before reading the body, counts the bytes as they
  arrive (a chunked body has no length) and stops before writing past the cap;
- checks the exact size and the sha256 when they are given;
- writes to a temporary file beside the destination, flushed to the card, and renames it into
  place only when every check has passed: nothing half-written or unverified ever has the final
  name, and the temporary file is removed on any failure;
- fails with a `DownloadError` whose `kind` says why (`Failure`), so callers decide what to retry.

Streams keep their own readers (`stream_run.StreamRun`; HLS through `protocol.hls`): a stream
has no end, size or hash, and is read for as long as it plays. They share the client rules that
apply: the token through the same `MediaToken` (the stream client is built with it as its
auth, so only the controller's own URLs get it, each HLS segment judged by its own address),
and caps counted as bytes arrive on HLS playlists and segments (`protocol.hls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import httpx

from firmware_sim.media_token import MediaToken, no_token, origin

HTTP_TIMEOUT_S = 30.0
CHUNK = 64 * 1024


class Failure(StrEnum):
    """Why a download failed."""

    bad_url = "bad_url"  # not an http(s) address
    http_status = "http_status"  # the server answered other than 200 (`status`)
    too_large = "too_large"  # Content-Length or the bytes received passed the cap
    incomplete = "incomplete"  # the body ended before the expected size
    hash_mismatch = "hash_mismatch"  # whole, but not the bytes the sha256 names
    timeout = "timeout"  # connecting or reading took longer than the timeout
    network = "network"  # the connection failed or broke
    storage = "storage"  # the card could not take the bytes


class DownloadError(Exception):
    """A download that cannot be used; the message says why in a line fit for an event."""

    def __init__(
        self,
        kind: Failure,
        message: str,
        *,
        status: int | None = None,
        received: int = 0,
        sha256: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.received = received  # bytes taken before it failed
        self.sha256 = sha256  # of what arrived, on a hash mismatch


@dataclass(frozen=True)
class Fetched:
    size: int
    sha256: str


class Downloader:
    """Downloads for one node, on a client it may share with other nodes (a simulated fleet)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: MediaToken | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> None:
        self.http = http
        self.token = token if token is not None else no_token(http)
        self.timeout_s = timeout_s

    async def fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        exact: bool = False,
        sha256: str | None = None,
        dest: Path | None = None,
        part: Path | None = None,
        on_bytes: Callable[[bytes], None] | None = None,
        chunk_size: int | None = CHUNK,
        mangle: Callable[[bytes], bytes] | None = None,
    ) -> Fetched:
        """Download `url` into `dest` (None: check the bytes and keep nothing).

        `max_bytes` caps it (with `exact`, it is also the size it must have); `part` is the
        temporary file (default: `dest` + ".part"); `on_bytes` sees each chunk once it is
        written (progressive playback); `chunk_size` None hands bytes on as they arrive;
        `mangle` damages bytes on the way (a fault scenario's corrupt download).
        """
        if origin(url) is None:
            raise DownloadError(Failure.bad_url, f"unsupported url {url[:100]!r}")
        if dest is not None and part is None:
            part = dest.with_name(dest.name + ".part")
        args = (url, max_bytes, exact, sha256, dest, part, on_bytes, chunk_size, mangle)
        try:
            return await self._fetch_once(*args)
        except DownloadError as exc:
            # The controller no longer takes the token (it expired while the node was away):
            # renew it with the broker login, once, and try again.
            if exc.status != 401 or not self.token.owns(url) or not await self.token.renew():
                raise
        return await self._fetch_once(*args)

    async def _fetch_once(
        self,
        url: str,
        max_bytes: int,
        exact: bool,
        sha256: str | None,
        dest: Path | None,
        part: Path | None,
        on_bytes: Callable[[bytes], None] | None,
        chunk_size: int | None,
        mangle: Callable[[bytes], bytes] | None,
    ) -> Fetched:
        await self.token.current()  # renewed first when it is about to end
        digest = hashlib.sha256()
        received = 0
        done = False
        try:
            async with self.http.stream(
                "GET", url, auth=self.token, timeout=self.timeout_s, follow_redirects=False
            ) as resp:
                if resp.status_code != 200:
                    raise DownloadError(
                        Failure.http_status,
                        f"HTTP {resp.status_code} from {url[:200]}",
                        status=resp.status_code,
                    )
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadError(
                        Failure.too_large,
                        f"larger than the declared {max_bytes} bytes (Content-Length {declared})",
                    )
                with _open(part) as sink:
                    async for chunk in resp.aiter_bytes(chunk_size):
                        if mangle is not None:
                            chunk = mangle(chunk)
                        if received + len(chunk) > max_bytes:
                            raise DownloadError(
                                Failure.too_large,
                                f"larger than the declared {max_bytes} bytes",
                                received=received,
                            )
                        received += len(chunk)
                        digest.update(chunk)
                        if sink is not None:
                            sink.write(chunk)
                        if on_bytes is not None:
                            on_bytes(chunk)
                    if sink is not None:
                        sink.flush()
                        await asyncio.to_thread(os.fsync, sink.fileno())
            if exact and received != max_bytes:
                why = f"size {received} != declared {max_bytes}"
                raise DownloadError(Failure.incomplete, why, received=received)
            got = digest.hexdigest()
            if sha256 is not None and got != sha256:
                raise DownloadError(
                    Failure.hash_mismatch,
                    f"sha256 mismatch: got {got}",
                    received=received,
                    sha256=got,
                )
            done = _keep(part, dest)
            return Fetched(received, got)
        except httpx.TimeoutException as exc:
            raise DownloadError(
                Failure.timeout, f"{type(exc).__name__}: {exc}", received=received
            ) from None
        except httpx.HTTPError as exc:
            raise DownloadError(
                Failure.network, f"{type(exc).__name__}: {exc}", received=received
            ) from None
        except OSError as exc:
            raise DownloadError(
                Failure.storage, f"cannot keep it: {exc}", received=received
            ) from None
        finally:
            if not done:
                _drop(part)


def _keep(part: Path | None, dest: Path | None) -> bool:
    """Give the checked bytes their final name (a rename: whole or not at all)."""
    if part is not None and dest is not None:
        part.replace(dest)
    return True


def _drop(part: Path | None) -> None:
    if part is not None:
        part.unlink(missing_ok=True)


def _open(part: Path | None) -> contextlib.AbstractContextManager[BinaryIO | None]:
    """The temporary file, or nothing on a node that keeps no bytes (a simulated one)."""
    if part is None:
        return contextlib.nullcontext()
    part.parent.mkdir(parents=True, exist_ok=True)
    return part.open("wb")
