"""Files a config names and monitord reads while loading it: secrets and TLS material.

Only regular files of bounded size are read. A path naming /dev/zero, a FIFO or a directory
by mistake is a config error that says so, not a load that never ends or fills memory
(found by fuzzing the loader, issue 9).
"""

from __future__ import annotations

import os
import stat

MAX_FILE_BYTES = 16 * 1024 * 1024  # far above any CA bundle, key, hash or password


def file_problem(path: str) -> str | None:
    """Why `path` must not be read, or None. A file that cannot be looked at (missing,
    unreadable) is None too: the reader then reports it in its own words."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > MAX_FILE_BYTES:
        return f"larger than {MAX_FILE_BYTES // 2**20} MiB"
    return None
