"""Numbers with intervals as plain JSON, and their one text form on the page.

An estimate in a suite experiment's results is ``{"value": v, "ci": [lo, hi], "level": 0.95}``;
the page prints it as ``v [lo, hi]`` through :func:`fmt_ci`, so every number in a verdict is read
from the results (``results.json``), never typed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["estimate", "fmt", "fmt_ci", "covers"]


def _f(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def estimate(value: Any, ci: Sequence[Any] | None = None, level: float = 0.95,
             **extra: Any) -> dict[str, Any]:
    """``{"value", "ci", "level"}`` (non-finite numbers become ``None``) plus ``extra`` keys."""
    lo, hi = (None, None) if ci is None else (_f(ci[0]), _f(ci[1]))
    return {"value": _f(value), "ci": [lo, hi], "level": level, **extra}


def fmt(v: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (``-`` for a missing one)."""
    if v is None:
        return "-"
    x = float(v)
    if not math.isfinite(x):
        return "-"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}"


def fmt_ci(e: dict[str, Any], digits: int = 3) -> str:
    """``value [lo, hi]`` of an :func:`estimate`."""
    lo, hi = e.get("ci") or (None, None)
    if lo is None or hi is None:
        return f"{fmt(e.get('value'), digits)} (no interval)"
    return f"{fmt(e.get('value'), digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def covers(e: dict[str, Any], truth: float) -> bool | None:
    """Whether the interval of ``e`` contains ``truth`` (``None`` without an interval)."""
    lo, hi = e.get("ci") or (None, None)
    if lo is None or hi is None:
        return None
    return bool(lo <= truth <= hi)
