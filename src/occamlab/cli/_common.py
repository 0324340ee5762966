"""Helpers shared by the subcommands: JSON output, atomic writes, ``k=v`` parsing."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from occamlab._render import jsonable
from occamlab.errors import ConfigError

__all__ = ["write_json", "atomic_write_bytes", "atomic_write_text", "parse_kv", "add_json_option"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(obj: Any, dest: str) -> None:
    """Write ``obj`` (made JSON-safe) to file ``dest``, or to standard output when ``dest == '-'``."""
    text = json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(dest, text)


def add_json_option(parser: Any) -> None:
    parser.add_argument(
        "--json", metavar="OUT", default=None,
        help="write the result as JSON to file OUT ('-' for standard output)",
    )


def parse_kv(items: list[str] | None, *, what: str = "--set") -> dict[str, str]:
    """Parse ``["k=v", ...]`` into a dict of strings; a malformed item is a :class:`ConfigError`."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
