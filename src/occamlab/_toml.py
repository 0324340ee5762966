"""Reading TOML configs and ``--set`` values, shared by every config-reading entry point."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError

__all__ = ["read_toml", "parse_scalar"]


def read_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """The TOML document at ``path``; a :class:`ConfigError` naming the file when it is missing or
    not valid TOML."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(p)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value (``3e-3``, ``true``, ``"x"``, ``[1, 2]``), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
