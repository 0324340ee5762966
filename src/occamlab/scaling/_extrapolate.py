"""Extrapolation checks: fit on the smaller scales, predict the held-out larger ones.

``extrapolation_check`` holds out the largest values of a scale column (model size, say) and
reports the relative error of the predictions there and whether the held-out points fall inside the
prediction intervals. ``leave_one_group_out`` refits without each group in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.scaling._data import column
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import LawForm
from occamlab.scaling._result import FitResult

__all__ = ["ExtrapolationResult", "extrapolation_check", "leave_one_group_out"]


@dataclass(frozen=True)
class ExtrapolationResult(Rendered):
    """Held-out points, their predictions and errors, per held-out group."""

    by: str
    groups: tuple[float, ...]  # the held-out value of ``by`` of each point
    observed: tuple[float, ...]
    predicted: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    relative_error: tuple[float, ...]
    mean_abs_relative_error: float
    max_abs_relative_error: float
    coverage: float
    level: float
    mode: str  # "holdout-largest" or "leave-one-group-out"
    fits: tuple[FitResult, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings of the refits, each once."""
        return tuple(dict.fromkeys(w for f in self.fits for w in f.warnings))

    @property
    def valid(self) -> bool:
        """Every refit is valid (converged, no parameter at a bound, no warnings). The errors and
        the coverage are measurements, not diagnostics: a valid check can show a poor law."""
        return all(f.valid for f in self.fits)

    def _tables(self) -> list[Table]:
        rows = []
        for g in sorted(set(self.groups)):
            idx = [i for i, v in enumerate(self.groups) if v == g]
            err = np.abs(np.array(self.relative_error)[idx])
            inside = [self.lower[i] <= self.observed[i] <= self.upper[i] for i in idx]
            rows.append([g, len(idx), float(err.mean()), float(err.max()), float(np.mean(inside))])
        pct = f"{100 * self.level:g}%"
        return [Table(f"Extrapolation check ({self.mode}, by {self.by})",
                      [f"held-out {self.by}", "points", "mean |rel. error|", "max |rel. error|",
                       f"inside {pct} interval"], rows,
                      [f"overall: mean |relative error| {self.mean_abs_relative_error:.4g}, "
                       f"max {self.max_abs_relative_error:.4g}, interval coverage {self.coverage:.3g}",
                       "intervals are for a new measurement: the law's uncertainty plus the residual "
                       "noise of the fit"])]


@dataclass(frozen=True)
class _FitOptions:
    """The options of :func:`fit` that the extrapolation checks pass on to every refit."""

    target: str
    columns: Mapping[str, str] | None
    loss_fn: str
    delta: float
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None
    fixed: Mapping[str, float] | None
    bootstrap: int
    level: float
    seed: int

    def fit(self, form: LawForm, data: Any) -> FitResult:
        return fit(form, data, target=self.target, columns=self.columns, loss_fn=self.loss_fn,
                   delta=self.delta, starts=self.starts, fixed=self.fixed, bootstrap=self.bootstrap,
                   level=self.level, seed=self.seed)


def _predict_holdout(form: LawForm, train: Any, test: Any, options: _FitOptions
                     ) -> tuple[FitResult, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit on ``train``; observed values, predictions and observation intervals on ``test``."""
    res = options.fit(form, train)
    cols = dict(options.columns or {})
    inputs: dict[str, Any] = {k: column(test, cols.get(k, k)) for k in form.inputs}
    pred = res.predict(form=form, kind="observation", **inputs)
    return (res, column(test, options.target), np.array(pred.value), np.array(pred.lower),
            np.array(pred.upper))


def _subset(data: Any, mask: np.ndarray) -> Any:
    if hasattr(data, "iloc"):
        return data.loc[mask]
    return {k: np.asarray(v)[mask] for k, v in data.items()}


def _collect(by: str, parts: list[tuple[float, FitResult, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
             level: float, mode: str) -> ExtrapolationResult:
    g = np.concatenate([np.full(len(p[2]), p[0]) for p in parts])
    obs, pred, lo, hi = (np.concatenate([p[i] for p in parts]) for i in (2, 3, 4, 5))
    rel = (pred - obs) / obs
    return ExtrapolationResult(
        by=by, groups=tuple(map(float, g)), observed=tuple(map(float, obs)),
        predicted=tuple(map(float, pred)), lower=tuple(map(float, lo)), upper=tuple(map(float, hi)),
        relative_error=tuple(map(float, rel)), mean_abs_relative_error=float(np.mean(np.abs(rel))),
        max_abs_relative_error=float(np.max(np.abs(rel))),
        coverage=float(np.mean((lo <= obs) & (obs <= hi))), level=level, mode=mode,
        fits=tuple(p[1] for p in parts),
    )


def extrapolation_check(
    form: LawForm,
    data: Any,
    *,
    by: str,
    n_holdout: int = 1,
    target: str = "loss",
    columns: Mapping[str, str] | None = None,
    loss_fn: str = "huber",
    delta: float = 1e-3,
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> ExtrapolationResult:
    """Fit on all but the ``n_holdout`` largest values of column ``by``; predict those.

    For each held-out point ``i``: relative error ``(y_hat_i - y_i) / y_i``, and whether ``y_i`` lies
    in the observation interval (the law's uncertainty plus the residual noise).

    Parameters
    ----------
    form : LawForm
    data : pandas.DataFrame or mapping of arrays
    by : str
        Column whose largest values are held out (model size, say).
    n_holdout : int
        How many of its distinct largest values to hold out (at least 2 must remain).
    target : str
        Column of observed values.
    columns : mapping, optional
        Form input name -> column name, as in :func:`fit`.
    loss_fn, delta, starts, fixed, bootstrap, level
        Passed to every :func:`fit` (``loss_fn``: the robust loss function, "huber" or "lsq").
    seed : int
        Seed of the fits' bootstrap resampling (non-negative integer).
    """
    options = _FitOptions(target, columns, loss_fn, delta, starts, fixed, bootstrap, level, check_seed(seed))
    scale = column(data, by, role="scale to hold out")
    values = np.unique(scale)
    if not 1 <= n_holdout < len(values) - 1:
        raise ConfigError(f"n_holdout must be between 1 and {len(values) - 2} "
                          f"({len(values)} distinct values of {by!r}), got {n_holdout}")
    cut = values[-n_holdout]
    test = scale >= cut
    res, obs, pred, lo, hi = _predict_holdout(form, _subset(data, ~test), _subset(data, test), options)
    parts = [(float(v), res, obs[scale[test] == v], pred[scale[test] == v], lo[scale[test] == v],
              hi[scale[test] == v]) for v in values[-n_holdout:]]
    return _collect(by, parts, res.level, "holdout-largest")


def leave_one_group_out(
    form: LawForm,
    data: Any,
    *,
    group: str,
    target: str = "loss",
    columns: Mapping[str, str] | None = None,
    loss_fn: str = "huber",
    delta: float = 1e-3,
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> ExtrapolationResult:
    """For each distinct value of column ``group``: fit without it, predict it.

    Parameters
    ----------
    form : LawForm
    data : pandas.DataFrame or mapping of arrays
    group : str
        Column whose distinct values are left out in turn.
    target : str
        Column of observed values.
    columns : mapping, optional
        Form input name -> column name, as in :func:`fit`.
    loss_fn, delta, starts, fixed, bootstrap, level
        Passed to every :func:`fit` (``loss_fn``: the robust loss function, "huber" or "lsq").
    seed : int
        Seed of the fits' bootstrap resampling (non-negative integer).
    """
    options = _FitOptions(target, columns, loss_fn, delta, starts, fixed, bootstrap, level, check_seed(seed))
    labels = column(data, group, role="group")
    parts = []
    for v in np.unique(labels):
        m = labels == v
        res, obs, pred, lo, hi = _predict_holdout(form, _subset(data, ~m), _subset(data, m), options)
        parts.append((float(v), res, obs, pred, lo, hi))
    return _collect(group, parts, level, "leave-one-group-out")

