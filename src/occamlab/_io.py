"""Writing files and folders atomically: the one place in occamlab that renames into place.

A reader (a resumed sweep, ``occam report``, a second process) never sees half a file: the data
goes to a temporary name in the destination's folder, is flushed, and replaces the destination by
one ``os.replace`` (atomic on POSIX within a file system). A folder is built under a temporary
name and swapped in the same way, the old one moved aside first and deleted after.

The run store keeps its own renames for run folders (claims, trash, recovery of half-committed
runs: ``occamlab.store``); everything else writes through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from occamlab._json import jsonable

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_dir",
           "json_text", "umask"]


def umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename; returns the path.

    The parent folder is created when missing. On any error the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            # mkstemp makes 0600; give what a plain open() would (0666 under the umask)
            os.fchmod(fh.fileno(), 0o666 & ~umask())
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        _put_in_place(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _put_in_place(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` (a file, or a folder) to ``path``, replacing what is there. A
    folder in the way is moved aside to ``.NAME.old`` first and deleted after (``os.replace``
    cannot replace a non-empty folder)."""
    old = None
    if tmp.is_dir() and path.exists():
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def json_text(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``obj`` as strict JSON text ending in a newline (numpy scalars, tuples made plain; a
    non-finite float becomes ``null``, since JSON has no NaN)."""
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = False, fsync: bool = True) -> Path:
    """Write ``obj`` as strict JSON (see :func:`json_text`) atomically to ``path``."""
    return atomic_write_text(path, json_text(obj, indent=indent, sort_keys=sort_keys), fsync=fsync)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder under a temporary name; on success it replaces ``path`` (old one removed).

    ::

        with atomic_dir("runs/tiny/best") as tmp:
            save_file(tensors, tmp / "model.safetensors")

    If the block raises, the temporary folder is deleted and ``path`` is untouched. Between the
    two renames of the swap a reader finds no folder at ``path`` for an instant, never a half one;
    a process killed there leaves the previous version as ``.NAME.old``, which the next swap
    removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; a plain mkdir gives this
        yield tmp
        _put_in_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
