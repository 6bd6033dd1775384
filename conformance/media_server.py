"""The kit's media server: serves named files over HTTP to whoever shows the node's token."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MediaRequest:
    name: str
    token_ok: bool
    status: int


class MediaServer:
    """Files by name under /media/; a request without `Authorization: Bearer <token>` gets 401.
    Every request is recorded, with whether it carried the token."""

    def __init__(self, token: str, host: str = "127.0.0.1") -> None:
        self.token = token
        self.files: dict[str, bytes] = {}
        self.requests: list[MediaRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.removeprefix("/media/")
                token_ok = self.headers.get("Authorization") == f"Bearer {server.token}"
                data = server.files.get(name)
                status = 401 if not token_ok else 404 if data is None else 200
                with server._lock:
                    server.requests.append(MediaRequest(name, token_ok, status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) if status == 200 and data else 0))
                self.end_headers()
                if status == 200 and data:
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/media/{name}"

    def requests_for(self, name: str) -> list[MediaRequest]:
        with self._lock:
            return [r for r in self.requests if r.name == name]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def silent_mp3(seconds: float, title: str = "") -> bytes:
    """MPEG-1 Layer III, 128 kb/s, 44.1 kHz mono, silence: a frame header and zero side
    information decode to silence in any decoder. Real audio that a node can play; `title`
    (an ID3v2 tag) makes recordings of one length differ, each with its own SHA-256."""
    frame = bytes([0xFF, 0xFB, 0x90, 0xC4]) + bytes(413)  # 417 bytes, 1152 samples
    audio = frame * max(1, round(seconds * 44100 / 1152))
    if not title:
        return audio
    text = b"\x03" + title.encode()  # UTF-8
    tit2 = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    size = len(tit2)  # under 128: its syncsafe form is the number itself
    assert size < 128, "keep titles short"
    return b"ID3\x04\x00\x00" + size.to_bytes(4, "big") + tit2 + audio
