"""References from one run to the files of another (``run:<id>/best``), and process data specs.

A suite experiment plans its runs in stages: a fine-tune or an LLC estimate names the checkpoint of
a training run of an earlier stage as ``run:<run id>/<path in its folder>``. The reference holds
no store path, so the run id (a hash of the config) is the same in every store; it is resolved
when the run executes, against the store that holds it.

Training data can also be a process of :mod:`occamlab.processes`:
``process:NAME?param=value&...&length=N&seed=S`` samples ``N`` symbols (one sequence, seeded)
when the run starts, so the data are part of the config and of the run id.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError, DataError

__all__ = ["RUN_PREFIX", "PROCESS_PREFIX", "run_ref", "resolve_ref", "store_of", "process_spec",
           "parse_process_spec", "process_tokens"]

RUN_PREFIX = "run:"
PROCESS_PREFIX = "process:"


def run_ref(run: Any, path: str = "") -> str:
    """``run:<id>/<path>`` for a planned run (or a run id) and a path inside its folder."""
    rid = getattr(run, "id", run)
    return f"{RUN_PREFIX}{rid}/{path}" if path else f"{RUN_PREFIX}{rid}"


def store_of(run_dir: str | Path) -> Path | None:
    """The store root of a run folder (``STORE/runs/<folder>``), or ``None`` outside a store."""
    p = Path(run_dir).resolve()
    root = p.parent.parent
    if p.parent.name == "runs" and (root / "store.json").exists():
        return root
    return None


def resolve_ref(spec: str, run_dir: str | Path | None) -> str:
    """A ``run:`` reference as the path it names (other strings are returned unchanged).

    Raises
    ------
    DataError
        The reference is used outside a run store, or the run it names is not done.
    """
    if not spec.startswith(RUN_PREFIX):
        return spec
    rid, _, rest = spec[len(RUN_PREFIX):].partition("/")
    root = store_of(run_dir) if run_dir is not None else None
    if root is None:
        raise DataError(f"{spec!r} refers to a run of a store; it can only be used by a run "
                        "that executes in that store (occam sweep / occam demo)")
    folder = root / "runs" / rid
    try:
        status = (folder / "status").read_text(encoding="utf-8").partition("\n")[0]
    except FileNotFoundError:
        raise DataError(f"{spec!r}: the store {str(root)!r} holds no run {rid}") from None
    if status != "done":
        raise DataError(f"{spec!r}: run {rid}, which this run depends on, is {status}, not done")
    return str(folder / rest)


def process_spec(name: str, *, length: int, seed: int = 0, **params: float) -> str:
    """``process:NAME?k=v&...&length=N&seed=S``, parameters sorted (one spelling per data)."""
    q = {**{k: repr(float(v)) for k, v in sorted(params.items())}, "length": str(int(length)),
         "seed": str(int(seed))}
    return f"{PROCESS_PREFIX}{name}?{urllib.parse.urlencode(q)}"


def parse_process_spec(spec: str) -> tuple[str, dict[str, float], int, int]:
    """``(name, params, length, seed)`` of a ``process:`` spec."""
    body = spec[len(PROCESS_PREFIX):]
    name, _, query = body.partition("?")
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    try:
        length = int(q.pop("length"))
        seed = int(q.pop("seed", "0"))
        params = {k: float(v) for k, v in q.items()}
    except (KeyError, ValueError):
        raise ConfigError(f"{spec!r}: expected process:NAME?param=value&...&length=N&seed=S "
                          "(length required)") from None
    if not name or length < 2 or seed < 0:
        raise ConfigError(f"{spec!r}: needs a process name, length >= 2 and seed >= 0")
    return name, params, length, seed


def process_tokens(spec: str) -> Any:
    """The symbol ids of a ``process:`` spec (``numpy`` int64, one sequence)."""
    import numpy as np

    from occamlab.processes import build_process, sample

    name, params, length, seed = parse_process_spec(spec)
    s = sample(build_process(name, params), length, seed=seed)
    return np.asarray(s.symbols[0], dtype=np.int64)
