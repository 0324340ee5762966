"""Exceptions and warnings shared by every occamlab library.

User mistakes raise a subclass of :class:`OccamError`; the command line turns those into a one-line
message and exit code 2, without a traceback. ``ConfigError`` and ``DataError`` also derive from
``ValueError`` so that library users can catch them the usual way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "OccamError",
    "ConfigError",
    "DataError",
    "ConvergenceWarning",
    "OccamWarning",
    "suggest",
    "check_seed",
    "check_memory",
    "available_memory",
]


class OccamError(Exception):
    """Base class of every error occamlab raises on purpose (a user mistake or a bad input)."""


class ConfigError(OccamError, ValueError):
    """A configuration value, option or argument is not allowed."""


class DataError(OccamError, ValueError):
    """Input data is missing, malformed or unusable (names the file, row or key)."""


class OccamWarning(UserWarning):
    """Base class of occamlab warnings."""


class ConvergenceWarning(OccamWarning):
    """An optimizer or sampler did not converge, or a parameter sits at a bound."""


def suggest(name: str, allowed: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest allowed name, or ``""``.

    >>> suggest("alpah", ["alpha", "beta"])
    " (did you mean 'alpha'?)"
    """
    allowed = list(allowed)
    same_case = [a for a in allowed if a.lower() == name.lower()]
    if same_case:
        return f" (did you mean {same_case[0]!r}?)"
    match = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_seed(seed: object, *, name: str = "seed") -> int:
    """The one seed rule of occamlab: every function that draws random numbers takes a keyword-only
    ``seed: int = 0``, a non-negative integer (same seed, same result; nothing is drawn from a
    global generator). Returns ``seed`` as an ``int``; anything else is a :class:`ConfigError`.

    >>> check_seed(3)
    3
    """
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {seed!r}")
    if int(seed) >= 2**63:
        raise ConfigError(f"{name} must be below 2**63, got {seed!r}")
    return int(seed)


def available_memory() -> int:
    """Bytes of memory available to a new allocation without swapping (``MemAvailable`` of
    ``/proc/meminfo`` on Linux; else free physical pages)."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 2**63 - 1  # unknown: do not refuse


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def check_memory(n_bytes: float, *, what: str) -> None:
    """Refuse a request whose arrays cannot fit in memory, before allocating anything.

    Raises :class:`ConfigError` naming ``what``, the bytes needed and the bytes available, when
    ``n_bytes`` exceeds what the machine has free.

    >>> check_memory(1024, what="a tiny table")
    """
    free = available_memory()
    if n_bytes > free:
        raise ConfigError(f"{what} needs {int(n_bytes)} bytes ({_size(n_bytes)}) of memory; "
                          f"{free} bytes ({_size(free)}) are available (ask for less)")
