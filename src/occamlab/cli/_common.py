"""Helpers shared by the subcommands: JSON output, atomic writes, ``k=v`` parsing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from occamlab._io import atomic_write_text, json_text
from occamlab.errors import ConfigError

__all__ = ["write_json", "parse_kv", "add_json_option", "check_output", "check_outputs"]


def write_json(obj: Any, dest: str) -> None:
    """Write ``obj`` (made JSON-safe) to file ``dest``, or to standard output when ``dest == '-'``."""
    text = json_text(obj)
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


def _inside(path: Path, folder: str | os.PathLike[str]) -> bool:
    root = Path(folder).resolve()
    return path == root or root in path.parents


def check_output(path: str | os.PathLike[str] | None, option: str, *, folder: bool = False,
                 stores: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Refuse an output path that cannot be written, before any work is done.

    ``path`` (``None`` or ``'-'``: nothing to check) must be a file (a folder when ``folder``)
    or not exist yet, every existing folder above it must be a folder, the nearest existing one
    writable, and it must not lie inside one of ``stores`` (a run store's own files). A refusal is
    a :class:`ConfigError` naming ``option`` and the path.
    """
    if path is None or str(path) in ("-", ""):
        return
    p = Path(path).expanduser().resolve()
    for store in stores:
        if store is not None and _inside(p, store):
            raise ConfigError(f"{option} {str(path)!r} is inside the run store {str(store)!r}; "
                              "write it elsewhere (a store holds only its own files)")
    if p.exists():
        if folder and not p.is_dir():
            raise ConfigError(f"{option} {str(path)!r} is a file, not a folder")
        if not folder and p.is_dir():
            raise ConfigError(f"{option} {str(path)!r} is a folder; give a file name")
        target = p if folder else p.parent
        if not os.access(target, os.W_OK | os.X_OK) or (not folder and not os.access(p, os.W_OK)):
            raise ConfigError(f"{option} {str(path)!r} cannot be written (permission denied)")
        return
    parent = Path(path).expanduser().parent  # as the user wrote it, for the message
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {str(path)!r} cannot be created: {str(parent)!r} is a file, "
                          "not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {str(path)!r} cannot be created: folder {str(parent)!r} is "
                          "not writable")


def check_outputs(args: Any, *names: str, folders: tuple[str, ...] = (),
                  stores: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """:func:`check_output` for each option ``names`` of the parsed ``args`` (``json`` ->
    ``--json``); those in ``folders`` are folders. Options absent from ``args`` are skipped."""
    stores = list(stores)
    for name in (*names, *folders):
        check_output(getattr(args, name, None), "--" + name.replace("_", "-"),
                     folder=name in folders, stores=stores if name != "store" else ())
