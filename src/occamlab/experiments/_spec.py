"""Sweep specs: a base config and axes in TOML, resolved into validated, content-addressed runs.

A spec file::

    experiment = "train"        # a registered experiment (occamlab.experiments.EXPERIMENTS)
    retries = 1                 # optional: re-run a failed run up to this many times
    time_limit = 600            # optional: seconds per run, then it fails

    [base]                      # the experiment's config; every run starts from it
    steps = 200
    [base.model]
    d_model = 16

    [axes]                      # grid: the product of every axis
    seed = [0, 1]
    "model.d_model" = [8, 16, 32]
    steps = {log = [100, 1000], num = 4}     # geometric: 100, 215, 464, 1000

    [zip]                       # these vary together (equal lengths): one axis of the grid
    "model.n_layer" = [1, 2, 4]
    "model.n_head" = [1, 2, 4]

``{log = [a, b], num = k}`` gives k geometrically spaced values ``a (b/a)^(i/(k-1))`` and
``{lin = [a, b], num = k}`` evenly spaced ones; both are rounded to integers (duplicates dropped)
when the config field is an integer (``int = true|false`` decides explicitly). ``[[zip]]`` (an array of tables) declares several zipped
groups. The number of runs is the product of the grid axes' lengths and the zip groups' lengths.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import flatten, is_int_type, parse_scalar, read_toml, set_dotted
from occamlab.errors import ConfigError, suggest
from occamlab.store import run_id

from ._registry import get_experiment

__all__ = ["SweepSpec", "PlannedRun", "load_spec", "parse_spec", "expand_values", "plan_run"]

TOP_KEYS = ("experiment", "base", "axes", "zip", "retries", "time_limit", "name",
            "max_training_clients", "prices")


@dataclass(frozen=True)
class PlannedRun:
    """One resolved run of a sweep: its id, experiment, full config and the swept values."""

    id: str
    experiment: str
    config: dict[str, Any]
    point: dict[str, Any]


# a sweep larger than this is a typo (or a job for several sweeps): refused before planning
MAX_RUNS = 100_000


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep (see the module docstring); :meth:`resolve` gives the runs."""

    experiment: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    zips: list[dict[str, list[Any]]] = field(default_factory=list)
    retries: int = 0
    time_limit: float | None = None
    name: str = ""
    source: str = "spec"
    max_training_clients: int | None = None
    prices: Any = None

    def resolve(self) -> list[PlannedRun]:
        """Every run of the sweep, validated, in grid order, duplicates removed.

        Raises
        ------
        ConfigError
            The sweep is empty, or a run's config is invalid (the message names the run's point).
        """
        dims: list[list[dict[str, Any]]] = [[{k: v} for v in vals] for k, vals in self.axes.items()]
        for group in self.zips:
            n = len(next(iter(group.values())))
            dims.append([{k: vals[i] for k, vals in group.items()} for i in range(n)])
        if any(len(d) == 0 for d in dims):
            raise ConfigError(f"{self.source}: the sweep is empty (an axis has no values)")
        n_runs = math.prod(len(d) for d in dims)
        if n_runs > MAX_RUNS:
            raise ConfigError(f"{self.source}: the sweep has {n_runs} runs; at most {MAX_RUNS} "
                              "are allowed in one sweep (split it, or use fewer axis values)")
        runs: list[PlannedRun] = []
        seen: set[str] = set()
        for combo in itertools.product(*dims):
            point: dict[str, Any] = {}
            for part in combo:
                point.update(part)
            cfg = copy.deepcopy(self.base)
            for k, v in point.items():
                set_dotted(cfg, k, v)
            try:
                run = plan_run(self.experiment, cfg, point)
            except ConfigError as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items()) or "base"
                raise ConfigError(f"{self.source}: run ({where}): {exc}") from None
            if run.id not in seen:
                seen.add(run.id)
                runs.append(run)
        if not runs:
            raise ConfigError(f"{self.source}: the sweep is empty")
        return runs


def plan_run(experiment: str, config: Mapping[str, Any],
             point: Mapping[str, Any] | None = None) -> PlannedRun:
    """One validated run: the experiment's full config (defaults filled in) and its content id.

    ``point`` records the values that vary between the runs of a sweep (for listings).
    Raises :class:`ConfigError` when ``config`` is not a valid config of ``experiment``.
    """
    full = get_experiment(experiment).config_dict(dict(config))
    return PlannedRun(run_id(experiment, full), experiment, full, dict(point or {}))


def expand_values(key: str, spec: Any, *, source: str = "spec",
                  integer: bool = False) -> list[Any]:
    """An axis's values: a list, or ``{log|lin = [a, b], num = k[, int = bool]}``."""
    if isinstance(spec, list):
        return list(spec)
    if not isinstance(spec, Mapping):
        return [spec]
    kinds = [k for k in ("log", "lin") if k in spec]
    extra = set(spec) - {"log", "lin", "num", "int"}
    if len(kinds) != 1 or extra or "num" not in spec:
        raise ConfigError(f"{source}: axis {key!r} must be a list or {{log = [a, b], num = k}} "
                          f"or {{lin = [a, b], num = k}}, got {dict(spec)!r}")
    ends, num = spec[kinds[0]], spec["num"]
    if (not isinstance(ends, list) or len(ends) != 2
            or not all(isinstance(e, int | float) and not isinstance(e, bool) for e in ends)):
        raise ConfigError(f"{source}: axis {key!r}: {kinds[0]} needs two numbers [a, b]")
    if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_RUNS:
        raise ConfigError(f"{source}: axis {key!r}: num must be an integer from 1 to {MAX_RUNS}, "
                          f"got {num!r}")
    a, b = float(ends[0]), float(ends[1])
    if kinds[0] == "log":
        if a <= 0 or b <= 0:
            raise ConfigError(f"{source}: axis {key!r}: log range needs positive ends, got {ends}")
        vals = [a * (b / a) ** (i / (num - 1)) if num > 1 else a for i in range(num)]
    else:
        vals = [a + (b - a) * i / (num - 1) if num > 1 else a for i in range(num)]
    as_int = spec.get("int", integer)
    if as_int:
        vals = [int(round(v)) for v in vals]
        return list(dict.fromkeys(vals))  # rounding may merge neighbours
    return [float(f"{v:.12g}") for v in vals]


def parse_spec(data: Mapping[str, Any], *, source: str = "spec",
               overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Build a :class:`SweepSpec` from parsed TOML, applying ``--set`` overrides.

    An override of a grid axis pins it to that one value; of a base key, replaces it.
    """
    for k in data:
        if k not in TOP_KEYS:
            raise ConfigError(f"{source}: unknown key {k!r}{suggest(k, TOP_KEYS)}; "
                              f"allowed: {', '.join(TOP_KEYS)}")
    if "experiment" not in data:
        raise ConfigError(f"{source}: missing 'experiment' (e.g. experiment = \"train\")")
    exp = get_experiment(str(data["experiment"]))
    types = exp.types()
    allowed = list(types)
    base = copy.deepcopy(dict(data.get("base", {})))
    axes_raw = data.get("axes", {})
    zips_raw = data.get("zip", [])
    if isinstance(zips_raw, Mapping):
        zips_raw = [zips_raw] if zips_raw else []
    if not isinstance(axes_raw, Mapping) or not isinstance(zips_raw, list):
        raise ConfigError(f"{source}: [axes] and [zip] must be tables")

    hints = getattr(exp.module, "KEY_HINTS", {})

    def check(key: str, what: str) -> None:
        if key not in allowed:
            hint = f"; {hints[key]}" if key in hints else ""
            raise ConfigError(f"{source}: unknown {what} {key!r}{suggest(key, allowed)} for "
                              f"experiment {exp.name!r}{hint}")

    for k in flatten(base):
        check(k, "base key")
    axes = {}
    for k, v in axes_raw.items():
        check(k, "axis")
        axes[k] = expand_values(k, v, source=source, integer=is_int_type(types[k]))
    zips = []
    for group in zips_raw:
        g = {}
        for k, v in group.items():
            check(k, "zipped axis")
            if k in axes:
                raise ConfigError(f"{source}: {k!r} is both a grid axis and a zipped axis")
            g[k] = expand_values(k, v, source=source, integer=is_int_type(types[k]))
        lengths = {k: len(v) for k, v in g.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{source}: zipped axes must have equal lengths, got {lengths}")
        if g:
            zips.append(g)
    for k, v in (overrides or {}).items():
        check(k, "--set key")
        if any(k in g for g in zips):
            raise ConfigError(f"--set {k}: cannot pin a zipped axis (edit the spec's [zip])")
        if k in axes:
            axes[k] = [v]
        else:
            set_dotted(base, k, v)
    retries = data.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigError(f"{source}: retries must be a non-negative integer, got {retries!r}")
    tl = data.get("time_limit")
    if tl is not None and (isinstance(tl, bool) or not isinstance(tl, int | float) or tl <= 0
                           or not math.isfinite(tl)):
        raise ConfigError(f"{source}: time_limit must be a positive number of seconds, got {tl!r}")
    return SweepSpec(experiment=exp.name, base=base, axes=axes, zips=zips, retries=retries,
                     time_limit=None if tl is None else float(tl), name=str(data.get("name", "")),
                     source=source, max_training_clients=_max_clients(data, source),
                     prices=_prices(data, source))


def _max_clients(data: Mapping[str, Any], source: str) -> int | None:
    v = data.get("max_training_clients")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ConfigError(f"{source}: max_training_clients must be a positive integer, got {v!r}")
    return v


def _prices(data: Mapping[str, Any], source: str) -> Any:
    """The spec's price table: a TOML file (relative to the spec's folder) or an inline table."""
    v = data.get("prices")
    if v is None or isinstance(v, Mapping):
        return v
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{source}: prices must name a TOML price table or be a table")
    p = Path(v)
    if not p.is_absolute() and source != "spec":
        p = Path(source).parent / p
    return str(p)




def load_spec(path: str | Path, overrides: Mapping[str, str] | None = None) -> SweepSpec:
    """Read a sweep spec from a TOML file; ``overrides`` values are parsed as TOML values."""
    data = read_toml(path, what="sweep spec")
    parsed = {k: parse_scalar(v) for k, v in (overrides or {}).items()}
    return parse_spec(data, source=str(Path(path)), overrides=parsed)
