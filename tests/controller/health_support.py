"""Test helpers for device health: a real HTTP server standing in for the province's webhook,
and parsing of the Prometheus text format."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any

from tests.conftest import free_port


class WebhookServer:
    """Records every JSON body POSTed to it; answers 500 to the first `fail_first` requests."""

    def __init__(self, fail_first: int = 0, port: int | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                server.attempts += 1
                if server.attempts <= server.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                server.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = port or free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self, event: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.received
            if (event is None or r["event"] == event)
            and (kind is None or r["alarm"]["kind"] == kind)
        ]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def prometheus(text: str) -> dict[str, float]:
    """`name{labels}` → value, for the samples of a text exposition."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples
