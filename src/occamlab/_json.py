"""Plain JSON from occamlab's values: the one encoder behind every ``to_dict`` and ``--json``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and nested containers to plain JSON types.

    Non-finite floats become ``None`` (JSON has no NaN), a :class:`~fractions.Fraction` its exact
    text (``"7/2"``); a ``to_dict`` method is used when present, else a dataclass's fields.
    """
    if obj is None or isinstance(obj, str | bool):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, Fraction):
        return str(obj)  # exact: "7/2"
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)}
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")
