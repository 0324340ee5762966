"""The first step of :func:`occamlab.scaling.fit`: checked data, the objective and the search space.

A :class:`Problem` holds everything the later steps (multi-start, polish, diagnosis, intervals)
read: the form, its inputs and the observed values ``y`` (and ``z = g(y)`` in the form's residual
space), the objective, and the internal bounds ``lower <= theta <= upper`` with fixed parameters
pinned (``lower_j = upper_j``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab.errors import ConfigError, DataError, check_seed
from occamlab.scaling._data import check_values, column, data_rows
from occamlab.scaling._forms import LawForm
from occamlab.scaling._objective import LOSS_FNS, Objective

__all__ = ["Problem", "check_fit_options", "prepare_data", "make_problem", "starting_points"]

Array = np.ndarray


@dataclass(frozen=True)
class Problem:
    """One fit's checked data and search space (internal coordinates, shape ``(P,)`` bounds)."""

    form: LawForm
    inputs: dict[str, Array]  # form input name -> values (n,)
    y: Array  # observed values (n,)
    z: Array  # observed values in residual space (n,)
    prep: dict[str, Array]  # the form's precomputed inputs
    objective: Objective  # the unweighted objective over the n points
    lower: Array  # (P,) internal lower bounds; fixed parameters have lower == upper
    upper: Array  # (P,)
    free: Array  # (P,) bool: not fixed
    fixed: dict[str, float]  # natural values of fixed parameters

    @property
    def n_points(self) -> int:
        return len(self.y)

    @property
    def n_params(self) -> int:
        return len(self.form.params)


def check_fit_options(*, loss_fn: str, delta: float, level: float, bootstrap: int, seed: object) -> int:
    """Raise :class:`ConfigError` for a bad option of :func:`fit`; return the checked ``seed``."""
    if loss_fn not in LOSS_FNS:
        raise ConfigError(f"loss_fn must be one of {LOSS_FNS}, got {loss_fn!r}")
    if not delta > 0:
        raise ConfigError(f"delta must be > 0, got {delta}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise ConfigError(f"bootstrap must be a non-negative integer, got {bootstrap}")
    return check_seed(seed)


def prepare_data(
    form: LawForm,
    data: Any,
    *,
    target: str,
    columns: Mapping[str, str] | None,
    source: str,
) -> tuple[dict[str, Array], Array]:
    """Pull the form's inputs and the target out of a DataFrame or mapping, checked.

    Raises :class:`DataError` for a missing or non-numeric column, non-finite values, non-positive
    values where logarithms are taken, a constant column, fewer rows than parameters + 1, or values
    that the form's transformation (``ln``, ``ln(y - E_y)``, ...) cannot take.
    """
    columns = dict(columns or {})
    unknown = [k for k in columns if k not in form.inputs]
    if unknown:
        raise ConfigError(f"{form.name} has inputs {list(form.inputs)}; got columns for {unknown}")
    inputs = {k: column(data, columns.get(k, k), source=source, role=f"input {k}") for k in form.inputs}
    y = column(data, target, source=source, role="target")
    named = {columns.get(k, k): v for k, v in inputs.items()}
    named[target] = y
    positive = [columns.get(k, k) for k in form.inputs] if form.positive_inputs else []
    if form.space == "log":
        positive.append(target)
    check_values(named, positive=positive, source=source, min_rows=len(form.params) + 1)
    z = form.transform(y)
    if not np.all(np.isfinite(z)):
        raise DataError(f"{source}: target {target!r} cannot be transformed for {form.name} "
                        f"({form.formula}) in data rows {data_rows(~np.isfinite(z))}")
    prep = form.prepare(inputs)
    for k, v in prep.items():
        if not np.all(np.isfinite(v)):
            raise DataError(f"{source}: input {k} is not finite after transformation in data "
                            f"rows {data_rows(~np.isfinite(v))}")
    return inputs, y


def _bounds(form: LawForm, fixed: Mapping[str, float] | None) -> tuple[Array, Array, Array, dict[str, float]]:
    """Internal bounds with each fixed parameter pinned at its value; the free mask."""
    lo, hi = form.internal_bounds()
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in form.param_names]
    if unknown:
        raise ConfigError(f"cannot fix {unknown}: {form.name} has parameters {list(form.param_names)}")
    for k, v in fixed.items():
        j = form.param_names.index(k)
        iv = form.to_internal({**{p: 1.0 for p in form.param_names}, k: v})[j]
        lo[j] = hi[j] = iv
    free = np.array([p not in fixed for p in form.param_names])
    return lo, hi, free, fixed


def make_problem(
    form: LawForm,
    data: Any,
    *,
    target: str,
    columns: Mapping[str, str] | None,
    loss_fn: str,
    delta: float,
    fixed: Mapping[str, float] | None,
    source: str,
) -> Problem:
    """Checked data, the objective ``(1/n) sum rho(r_i)`` and the bounds of one fit."""
    inputs, y = prepare_data(form, data, target=target, columns=columns, source=source)
    z = form.transform(y)
    prep = form.prepare(inputs)
    obj = Objective(form, prep, z, np.ones((1, len(y))), loss_fn=loss_fn, delta=delta)
    lo, hi, free, fixed_ = _bounds(form, fixed)
    return Problem(form=form, inputs=inputs, y=y, z=z, prep=prep, objective=obj, lower=lo, upper=hi,
                   free=free, fixed=fixed_)


def starting_points(
    problem: Problem,
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None,
) -> Array:
    """Internal starts ``(S, P)`` clipped to the bounds: the form's grid, or the caller's rows
    (internal values) or dicts (natural values)."""
    form = problem.form
    if starts is None:
        X0 = form.default_starts(problem.inputs, problem.y)
    else:
        rows_ = [form.to_internal(s) if isinstance(s, Mapping) else np.asarray(s, float) for s in starts]
        X0 = np.atleast_2d(np.array(rows_, dtype=float))
        if X0.shape[1] != problem.n_params:
            raise ConfigError(f"each start needs {problem.n_params} values ({list(form.param_names)}), "
                              f"got {X0.shape[1]}")
    return np.clip(X0, problem.lower, problem.upper)
