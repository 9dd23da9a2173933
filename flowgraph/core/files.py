"""Files written safely: hashed, written aside and renamed, folders swapped whole.

Every write of the store goes through these helpers, so a crash, a full disk or a
permission error leaves either the old or the new content, never a mix.
:func:`fault_point` marks the steps where the fault-injection tests kill the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks: files may be larger than memory)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()



def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename.

    The file is created owner-only (``mkstemp`` mode 0600) and new folders 0700: store
    files hold personal data. On any failure (disk full, permission denied) the temp
    file is removed and ``path`` keeps its previous content.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise



def replace_directory(tmp: Path, final: Path) -> None:
    """Put a finished folder ``tmp`` in the place of ``final`` (created or replaced).

    The old folder is renamed aside first and removed after, so ``final`` is always
    either the old or the new content, never a mix. ``tmp`` must be on the same disk.
    """
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.rmdir(old)
        os.replace(final, old)
        fault_point("folder-moved-aside")
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:  # put the previous content back: never leave ``final`` missing
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: the environment variable naming a :func:`fault_point` at which the process kills itself
FAULT_ENV = "FLOWGRAPH_FAULT_INJECT"


def fault_point(name: str) -> None:
    """Kill this process (SIGKILL, like ``kill -9``) when ``FLOWGRAPH_FAULT_INJECT`` names
    this point: the crash tests run a command in a subprocess with it set, then check that
    the store and its audit log recover. A no-op otherwise (one dict lookup).

    Points: ``manifest-swapped`` (the store's manifest was just replaced),
    ``audit-head-written`` (the audit head names a line not yet appended),
    ``folder-moved-aside`` (:func:`replace_directory` renamed the old folder away and has not
    put the new one in yet).

    >>> fault_point("manifest-swapped")  # the variable is not set: nothing happens
    """
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
