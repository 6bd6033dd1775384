"""The data directory is the service's alone: folders 0700, files 0600.

It holds the database, the signing keys, the broker's password file, every node's provisioning
file (broker password and media token) and the media. Other accounts on the machine have no
business reading any of it, so everything is created private, and what an older version left
readable is made private at start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; an existing folder is made 0700."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
    path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if it does not exist; an existing file is made 0600."""
    path = Path(path)
    if not path.parent.exists():  # an existing folder (perhaps not ours alone) is left as it is
        private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    path.chmod(FILE_MODE)
    return path


def secure_data_dir(data_dir: Path) -> None:
    """Make the data directory and everything in it private to the service's account."""
    private_dir(data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            p = Path(root, name)
            if not p.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    p.chmod(DIR_MODE)
        for name in files:
            p = Path(root, name)
            if not p.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    p.chmod(FILE_MODE)
