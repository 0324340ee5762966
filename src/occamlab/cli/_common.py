"""Helpers shared by the subcommands: JSON output, atomic writes, ``k=v`` parsing."""

from __future__ import annotations

import sys
from typing import Any

from occamlab._io import atomic_write_text, json_text
from occamlab.errors import ConfigError

__all__ = ["write_json", "parse_kv", "add_json_option"]


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
