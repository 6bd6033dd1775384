"""The media store: content addressing, refusal of anything but a sha256, cache records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from audio import MediaStore


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def test_files_are_named_by_their_sha256(store: MediaStore, tmp_path: Path) -> None:
    data = b"ID3-less mp3 bytes"
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.path_for(sha)
    assert path == store.root / sha[:2] / f"{sha}.mp3"
    assert path.read_bytes() == data
    assert store.has(sha) and store.size(sha) == len(data)

    src = tmp_path / "copy.mp3"
    src.write_bytes(data)
    assert store.put_file(src) == sha and src.exists()
    assert store.put_file(src, move=True) == sha and not src.exists()
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    ["../etc/passwd", "", "a" * 63, "A" * 64, "g" * 64, "a" * 65, "../" + "a" * 61,
     "/" + "a" * 63, "a" * 32 + "/" + "a" * 31],
)  # fmt: skip
def test_bad_sha_strings_are_refused(store: MediaStore, bad: str) -> None:
    assert store.path_for(bad) is None
    assert not store.has(bad)
    assert store.size(bad) is None
    assert store.delete(bad) is False


def test_delete(store: MediaStore) -> None:
    sha = store.put_bytes(b"x")
    assert store.delete(sha) is True
    assert store.path_for(sha) is None
    assert store.delete(sha) is False


def test_cache_records(store: MediaStore) -> None:
    key = "../../whatever key / with slashes"
    assert store.lookup(key) is None
    store.remember(key, {"sha256": "a" * 64, "note": "thông báo"})
    assert store.lookup(key) == {"sha256": "a" * 64, "note": "thông báo"}
    stored = list(store.keys_dir.iterdir())
    assert len(stored) == 1 and stored[0].parent == store.keys_dir
    stored[0].write_text("{not json", "utf-8")
    assert store.lookup(key) is None


def test_collect_garbage_keeps_used_and_recent_media(store: MediaStore) -> None:
    import os

    now = 1_000_000.0
    old_kept, old_unused, recent = (store.put_bytes(data) for data in (b"a", b"b", b"c"))
    for sha, mtime in ((old_kept, now - 90_000), (old_unused, now - 90_000), (recent, now - 10)):
        path = store.path_for(sha)
        assert path is not None
        os.utime(path, (mtime, mtime))
    store.remember("render of b", {"sha256": old_unused})
    store.remember("render of c", {"sha256": recent})
    store.remember("dangling", {"sha256": "d" * 64})

    deleted = store.collect_garbage({old_kept}, older_than_s=86_400, now=now)

    assert deleted == [old_unused]
    assert store.has(old_kept) and store.has(recent) and not store.has(old_unused)
    assert store.lookup("render of b") is None and store.lookup("dangling") is None
    assert store.lookup("render of c") == {"sha256": recent}
    assert store.collect_garbage(set(), older_than_s=86_400, now=now) == [old_kept]


def test_reuse_refreshes_the_age(store: MediaStore) -> None:
    import os

    sha = store.put_bytes(b"x")
    path = store.path_for(sha)
    assert path is not None
    os.utime(path, (1.0, 1.0))
    store.put_bytes(b"x")
    assert path.stat().st_mtime > 1.0
    assert store.collect_garbage(set(), older_than_s=3600) == []
    with pytest.raises(ValueError):
        store.collect_garbage(set(), older_than_s=-1)
