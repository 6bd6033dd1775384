"""Content-addressed media files named by their sha256, and the index of rendered announcements."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MediaStore", "is_sha256"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def is_sha256(value: object) -> bool:
    """Exactly 64 lower-case hex digits: the only strings the store turns into paths."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


class MediaStore:
    """Files under `root/<first two hex>/<sha256><suffix>`, written atomically and never changed.

    The same bytes are stored once. Cache records live in `root/keys/` and temporary
    work in `root/tmp/` (same file system, so finished files are renamed into place).
    """

    def __init__(self, root: Path, suffix: str = ".mp3") -> None:
        self.root = Path(root)
        self.suffix = suffix
        self.tmp_dir = self.root / "tmp"
        self.keys_dir = self.root / "keys"
        for directory in (self.root, self.tmp_dir, self.keys_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{self.suffix}"

    def path_for(self, sha256: str) -> Path | None:
        """The stored file for `sha256`; None if the string is not a sha256 or nothing is stored."""
        if not is_sha256(sha256):
            return None
        path = self._path(sha256)
        return path if path.is_file() else None

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256) is not None

    def size(self, sha256: str) -> int | None:
        """Size in bytes of the stored file, or None when absent."""
        path = self.path_for(sha256)
        return path.stat().st_size if path else None

    def put_file(self, src: Path, *, move: bool = False) -> str:
        """Store a copy of `src` (or `src` itself with `move`, when on this file system)."""
        src = Path(src)
        digest = hashlib.sha256()
        with src.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        sha256 = digest.hexdigest()
        final = self._path(sha256)
        if final.is_file():
            # Storing the same bytes again counts as a use for garbage collection.
            self.touch(sha256)
            if move:
                src.unlink(missing_ok=True)
            return sha256
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-", suffix=self.suffix)
        os.close(fd)
        try:
            if move:
                # os.replace is atomic only within one file system; copying covers the rest.
                try:
                    os.replace(src, tmp_name)
                except OSError:
                    shutil.copyfile(src, tmp_name)
                    src.unlink(missing_ok=True)
            else:
                shutil.copyfile(src, tmp_name)
            os.chmod(tmp_name, 0o600)  # the moved file kept its own mode: media is private
            os.replace(tmp_name, final)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return sha256

    def put_bytes(self, data: bytes) -> str:
        """Store `data`; returns its sha256."""
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="bytes-", suffix=self.suffix)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return self.put_file(Path(tmp_name), move=True)

    def delete(self, sha256: str) -> bool:
        """Remove the stored file; True if there was one."""
        path = self.path_for(sha256)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    def touch(self, sha256: str) -> None:
        """Mark the stored file as just used, so that garbage collection keeps it longer."""
        path = self.path_for(sha256)
        if path is not None:
            try:
                os.utime(path)
            except OSError:
                pass

    def media(self) -> Iterator[tuple[str, Path]]:
        """Every stored (sha256, path); temporary files and cache records are not media."""
        for directory in self.root.iterdir():
            if len(directory.name) != 2 or not directory.is_dir():
                continue
            for path in directory.glob(f"*{self.suffix}"):
                sha256 = path.name.removesuffix(self.suffix)
                if is_sha256(sha256) and sha256.startswith(directory.name):
                    yield sha256, path

    def collect_garbage(
        self, keep: set[str], older_than_s: float, now: float | None = None
    ) -> list[str]:
        """Delete media not in `keep` unused for `older_than_s` seconds; returns their sha256s.

        "Unused" is by file mtime, which storing or reusing a render refreshes. Cache records
        pointing to deleted (or already missing) media are dropped with them, so a later
        request renders afresh instead of finding a dangling record.
        """
        if older_than_s < 0:
            raise ValueError(f"older_than_s must not be negative, not {older_than_s}")
        cutoff = (time.time() if now is None else now) - older_than_s
        deleted: list[str] = []
        for sha256, path in list(self.media()):
            if sha256 in keep:
                continue
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            deleted.append(sha256)
        gone = set(deleted)
        for record_path in self.keys_dir.glob("*.json"):
            try:
                record = json.loads(record_path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            recorded: object = record.get("sha256") if isinstance(record, dict) else None
            if recorded in gone or (is_sha256(recorded) and not self.has(str(recorded))):
                record_path.unlink(missing_ok=True)
        return sorted(deleted)

    def _key_path(self, cache_key: str) -> Path:
        # Hashing the key keeps any caller-chosen string out of the file name.
        return self.keys_dir / f"{hashlib.sha256(cache_key.encode('utf-8')).hexdigest()}.json"

    def lookup(self, cache_key: str) -> dict[str, Any] | None:
        """The record remembered under `cache_key`, or None (also when unreadable)."""
        try:
            record = json.loads(self._key_path(cache_key).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def remember(self, cache_key: str, record: dict[str, Any]) -> None:
        """Save `record` (JSON-serialisable) under `cache_key`, replacing any previous one."""
        payload = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="key-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp_name, self._key_path(cache_key))
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def forget(self, cache_key: str) -> None:
        """Drop the record remembered under `cache_key`, if any."""
        self._key_path(cache_key).unlink(missing_ok=True)
