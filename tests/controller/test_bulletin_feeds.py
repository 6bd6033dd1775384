"""Following an upper level's RSS feed served by a real HTTP server on 127.0.0.1: conditional
requests, new entries becoming bulletins once, refused addresses and sizes, and the silence
alarm on a held clock."""

from __future__ import annotations

import email.utils
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlmodel import select

from audio.ffmpeg import run_ffmpeg
from controller.core.models import AuditEntry, BulletinFeedEntry
from tests.clocks import SteppedClock
from tests.conftest import RunningController, running_controller
from tests.controller.test_bulletins import province

AUDIO_TYPES = {".mp3": "audio/mpeg"}


@dataclass
class Item:
    guid: str
    title: str
    enclosure: str


@dataclass
class FeedServer:
    """An RSS 2.0 feed with ETag and Last-Modified, answering 304 when nothing changed."""

    audio: dict[str, bytes]
    items: list[Item] = field(default_factory=list)
    version: int = 1
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # path, conditional, status

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/feed.xml":
                    etag = f'"v{server.version}"'
                    conditional = self.headers.get("If-None-Match", "")
                    if conditional == etag:
                        server.requests.append((self.path, conditional, 304))
                        self.send_response(304)
                        self.end_headers()
                        return
                    body = server.rss().encode()
                    server.requests.append((self.path, conditional, 200))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", email.utils.formatdate(usegmt=True))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = server.audio.get(self.path)
                server.requests.append((self.path, "", 200 if data else 404))
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, item: Item) -> None:
        self.items.insert(0, item)
        self.version += 1

    def rss(self) -> str:
        entries = "".join(
            f"<item><title>{i.title}</title><guid>{i.guid}</guid>"
            f'<enclosure url="{self.url(i.enclosure)}" type="audio/mpeg" length="1"/></item>'
            for i in self.items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Đài tỉnh</title><link>{self.url('/')}</link><description>Bản tin</description>"
            f"{entries}</channel></rss>"
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def mp3(tmp_path: Path, name: str, seconds: float) -> bytes:
    path = tmp_path / name
    run_ffmpeg(
        ["-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-ac", "1", "-b:a", "48k", str(path)]
    )
    return path.read_bytes()


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[FeedServer]:
    server = FeedServer(
        {"/a1.mp3": mp3(tmp_path, "a1.mp3", 2), "/a2.mp3": mp3(tmp_path, "a2.mp3", 3)}
    )
    yield server
    server.close()


async def add_feed(ctl: RunningController, url: str, **kw: object) -> dict[str, object]:
    body = {"name": "dai-tinh", "url": url, "areas": ["xa-a"], "category": "news"} | kw
    r = await ctl.api("POST", "/bulletin-feeds", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_followed_feed_brings_each_new_entry_once(make_settings, feed_server):
    clock = SteppedClock()
    settings = make_settings(stream_allowed_hosts="127.0.0.1")
    async with running_controller(settings, clock) as ctl:
        await province(ctl)
        officer = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        # Followed for the first time: its newest entry is taken, not its archive.
        feed_server.add(Item("tin-0", "Bản tin hôm qua", "/a0.mp3"))
        feed_server.add(Item("tin-1", "Bản tin sáng", "/a1.mp3"))
        feed = await add_feed(ctl, feed_server.url("/feed.xml"), silent_after_s=3600)
        feeds = ctl.service.feeds

        result = await feeds.poll(feed["id"])
        assert (result.status, result.new) == ("ok", 1)
        bulletins = (await ctl.api("GET", "/bulletins", token=officer)).json()
        assert [(b["title"], b["source"], b["external_id"]) for b in bulletins] == [
            ("Bản tin sáng", "feed:dai-tinh", "tin-1")
        ]
        sid = bulletins[0]["schedules"][0]["schedule_id"]
        pending = (await ctl.api("GET", "/schedules?status=pending", token=officer)).json()
        assert [s["id"] for s in pending] == [sid]
        ann = (await ctl.api("GET", f"/announcements/{bulletins[0]['announcement_id']}")).json()
        assert ann["duration_s"] > 1.5

        # Nothing changed: a conditional request, answered 304, nothing taken again.
        result = await feeds.poll(feed["id"])
        assert result.status == "not modified"
        assert feed_server.requests[-1] == ("/feed.xml", f'"v{feed_server.version}"', 304)

        # A new entry, and the old one again under a new guid but the same recording: dedup
        # by id and by enclosure address.
        feed_server.add(Item("tin-2", "Bản tin trưa", "/a2.mp3"))
        feed_server.add(Item("tin-1-sua", "Bản tin sáng (lặp)", "/a1.mp3"))
        result = await feeds.poll(feed["id"])
        assert (result.status, result.new) == ("ok", 1)
        titles = [b["title"] for b in (await ctl.api("GET", "/bulletins")).json()]
        assert titles == ["Bản tin trưa", "Bản tin sáng"]
        assert [r[0] for r in feed_server.requests].count("/a1.mp3") == 1
        assert "/a0.mp3" not in [r[0] for r in feed_server.requests]

        # Every round over all feeds, as the periodic job runs it.
        assert (await feeds.poll_all())[str(feed["id"])].status == "not modified"

        # Silence: nothing new for longer than the feed's period, on the held clock.
        clock.advance(3_000_000)
        await feeds.poll(feed["id"])
        listed = (await ctl.api("GET", "/bulletin-feeds")).json()
        assert listed[0]["silent_since"] is None
        clock.advance(700_000)
        await feeds.poll(feed["id"])
        listed = (await ctl.api("GET", "/bulletin-feeds")).json()
        assert listed[0]["silent_since"] is not None
        exposed = ctl.service.metrics.exposition().decode()
        assert 'radio_bulletin_feed_silent{feed="dai-tinh"} 1.0' in exposed
        feed_server.add(Item("tin-3", "Bản tin chiều", "/a1.mp3?v=3"))
        feed_server.audio["/a1.mp3?v=3"] = feed_server.audio["/a1.mp3"]
        await feeds.poll(feed["id"])
        listed = (await ctl.api("GET", "/bulletin-feeds")).json()
        assert listed[0]["silent_since"] is None
        exposed = ctl.service.metrics.exposition().decode()
        assert 'radio_bulletin_feed_silent{feed="dai-tinh"} 0.0' in exposed
        with ctl.service.db.session() as s:
            changes = [
                (e.action, e.outcome)
                for e in s.exec(select(AuditEntry).where(AuditEntry.target == "feed:dai-tinh"))
            ]
        assert changes == [("feed.silent", "alarm"), ("feed.speaks", "ok")]


async def test_feed_addresses_and_sizes_are_checked(make_settings, feed_server, tmp_path):
    # The allow-list does not name 127.0.0.1: the controller's own network is not probed.
    async with running_controller(make_settings()) as ctl:
        await province(ctl)
        r = await ctl.api(
            "POST",
            "/bulletin-feeds",
            json={"name": "x", "url": feed_server.url("/feed.xml"), "areas": ["xa-a"]},
        )
        assert r.status_code == 422 and r.json()["code"] == "feed_host_refused"
        r = await ctl.api(
            "POST",
            "/bulletin-feeds",
            json={"name": "x", "url": "file:///etc/passwd", "areas": ["xa-a"]},
        )
        assert r.status_code == 422 and r.json()["code"] == "feed_url"

        # A name that leads inside the network is refused when it is followed, and what the
        # officer sees says so without saying where it led.
        officer = await ctl.login_as_new("chu-tich-a", "officer", "xa-a")
        body = {"name": "noi-bo", "url": "http://localhost:9/feed.xml", "areas": ["xa-a"]}
        r = await ctl.api("POST", "/bulletin-feeds", json=body, token=officer)
        assert r.status_code == 201, r.text
        r = await ctl.api("POST", f"/bulletin-feeds/{r.json()['id']}/poll", token=officer)
        assert r.status_code == 200, r.text
        assert r.json()["last_status"] == "refused: not a public address allowed for feeds"

    settings = make_settings(
        stream_allowed_hosts="127.0.0.1", upload_max_mb=0.01, data_dir=tmp_path / "second"
    )
    async with running_controller(settings) as ctl:
        await province(ctl)
        feed_server.add(Item("tin-1", "Bản tin dài", "/a2.mp3"))
        feed = await add_feed(ctl, feed_server.url("/feed.xml"))
        result = await ctl.service.feeds.poll(feed["id"])
        assert (result.status, result.new) == ("ok", 0)
        with ctl.service.db.session() as s:
            entries = s.exec(select(BulletinFeedEntry)).all()
        assert entries and all(
            "more than" in e.outcome or "announced" in e.outcome for e in entries
        )
        assert (await ctl.api("GET", "/bulletins")).json() == []
        # Kept as seen: the oversized recording is not fetched again at the next change.
        feed_server.version += 1
        await ctl.service.feeds.poll(feed["id"])
        assert [r[0] for r in feed_server.requests].count("/a2.mp3") == 1


async def test_a_feed_naming_a_local_file_reads_no_file(make_settings, tmp_path):
    """feedparser reads a local file when handed bytes that name one: the follower hands it a
    stream of what the server sent, so a body naming a feed on disk is just a broken feed."""
    on_disk = tmp_path / "local-feed.xml"
    local = FeedServer({})
    local.add(Item("tu-o-dia", "Từ ổ đĩa", "/khong-co.mp3"))
    on_disk.write_text(local.rss())
    local.close()

    class PathServer(FeedServer):
        def rss(self) -> str:
            return str(on_disk)

    server = PathServer({})
    try:
        async with running_controller(make_settings(stream_allowed_hosts="127.0.0.1")) as ctl:
            await province(ctl)
            feed = await add_feed(ctl, server.url("/feed.xml"))
            result = await ctl.service.feeds.poll(feed["id"])
            assert result.new == 0 and result.status.startswith("not an RSS or Atom feed")
            assert [r[0] for r in server.requests] == ["/feed.xml"]
    finally:
        server.close()
