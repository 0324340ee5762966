"""Extrapolation checks: fit on the smaller scales, predict the held-out larger ones.

``extrapolation_check`` holds out the largest values of a scale column (model size, say) and
reports the relative error of the predictions there and whether the held-out points fall inside the
prediction intervals. ``leave_one_group_out`` refits without each group in turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.scaling._backtest import FitOptions
from occamlab.scaling._calibrate import CalibratedExtrapolation, calibrate_extrapolation
from occamlab.scaling._data import column
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
    # with calibrate=True: the intervals calibrated by backtests on the training runs only
    calibration: CalibratedExtrapolation | None = None
    calibrated_predicted: tuple[float, ...] = ()  # the chosen form's (``calibration.form``)
    calibrated_lower: tuple[float, ...] = ()
    calibrated_upper: tuple[float, ...] = ()
    calibrated_coverage: float = float("nan")

    @property
    def median_half_width(self) -> tuple[float, float]:
        """Median relative half-width ``(upper - lower) / (2 y_hat)`` of the old and (NaN without
        calibration) the calibrated intervals."""
        pred = np.array(self.predicted)
        old = float(np.median((np.array(self.upper) - np.array(self.lower)) / (2 * pred)))
        if not self.calibrated_lower:
            return old, float("nan")
        new = (np.array(self.calibrated_upper) - np.array(self.calibrated_lower)) / (2 * pred)
        return old, float(np.median(new))

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
            row = [g, len(idx), float(err.mean()), float(err.max()), float(np.mean(inside))]
            if self.calibrated_lower:
                row.append(float(np.mean([self.calibrated_lower[i] <= self.observed[i]
                                          <= self.calibrated_upper[i] for i in idx])))
            rows.append(row)
        pct = f"{100 * self.level:g}%"
        heads = [f"held-out {self.by}", "points", "mean |rel. error|", "max |rel. error|",
                 f"inside {pct} interval"]
        notes = [f"overall: mean |relative error| {self.mean_abs_relative_error:.4g}, "
                 f"max {self.max_abs_relative_error:.4g}, interval coverage {self.coverage:.3g}",
                 "intervals are for a new measurement: the law's uncertainty plus the residual "
                 "noise of the fit"]
        if self.calibration is not None:
            heads.append(f"inside calibrated {pct}")
            old_w, new_w = self.median_half_width
            notes += [f"calibrated coverage {self.calibrated_coverage:.3g}; median relative "
                      f"half-width: old {old_w:.3g}, calibrated {new_w:.3g}",
                      f"calibrated intervals: {self.calibration.method} (training runs only)"]
        out = [Table(f"Extrapolation check ({self.mode}, by {self.by})", heads, rows, notes)]
        return out + (self.calibration._tables() if self.calibration is not None else [])


def _predict_holdout(form: LawForm, train: Any, test: Any, options: FitOptions
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
    calibrate: bool = False,
    forms: Sequence[LawForm] = (),
    n_cutoffs: int = 5,
    min_train_fraction: float = 0.3,
    seed: int = 0,
) -> ExtrapolationResult:
    """Fit on all but the ``n_holdout`` largest values of column ``by``; predict those.

    For each held-out point ``i``: relative error ``(y_hat_i - y_i) / y_i``, and whether ``y_i`` lies
    in the observation interval (the law's uncertainty plus the residual noise). With
    ``calibrate=True`` also the intervals of :func:`calibrate_extrapolation` made from the
    training runs alone (backtests along ``by`` below the held-out values): the held-out points
    never set their own width.

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
    calibrate : bool
        Also calibrate extrapolation intervals by backtests on the training runs.
    forms, n_cutoffs, min_train_fraction
        Passed to :func:`calibrate_extrapolation` (candidate forms besides ``form``, most
        backtests, least share of the training runs below a cut-off).
    seed : int
        Seed of the fits' bootstrap resampling (non-negative integer).
    """
    options = FitOptions(target, columns, loss_fn, delta, starts, fixed, bootstrap, level, check_seed(seed))
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
    out = _collect(by, parts, res.level, "holdout-largest")
    if not calibrate:
        return out
    if fixed:
        raise ConfigError("extrapolation_check: calibrate=True does not take fixed parameters")
    cal = calibrate_extrapolation(form, _subset(data, ~test), by=by, forms=forms, target=target,
                                  columns=columns, level=level, n_cutoffs=n_cutoffs,
                                  min_train_fraction=min_train_fraction, loss_fn=loss_fn,
                                  delta=delta, starts=starts, bootstrap=bootstrap, seed=seed)
    held = _subset(data, test)
    # ordered as the parts: by held-out value, then row order
    order = np.concatenate([np.flatnonzero(scale[test] == v) for v in values[-n_holdout:]])
    cols = dict(columns or {})
    chosen = next(f for f in (form, *forms) if f.name == cal.form)
    inputs = {k: column(held, cols.get(k, k))[order] for k in chosen.inputs}
    cp = cal.predict(scale=scale[test][order], form=chosen, **inputs)
    obs = np.array(out.observed)
    lo, hi = np.array(cp.lower), np.array(cp.upper)
    return dataclasses.replace(out, calibration=cal, calibrated_predicted=cp.value,
                               calibrated_lower=cp.lower, calibrated_upper=cp.upper,
                               calibrated_coverage=float(np.mean((lo <= obs) & (obs <= hi))))


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
    options = FitOptions(target, columns, loss_fn, delta, starts, fixed, bootstrap, level, check_seed(seed))
    labels = column(data, group, role="group")
    parts = []
    for v in np.unique(labels):
        m = labels == v
        res, obs, pred, lo, hi = _predict_holdout(form, _subset(data, ~m), _subset(data, m), options)
        parts.append((float(v), res, obs, pred, lo, hi))
    return _collect(group, parts, level, "leave-one-group-out")

