"""Extrapolation checks: fit on the smaller scales, predict the held-out larger ones.

``extrapolation_check`` holds out the largest values of a scale column (model size, say) and
reports the relative error of the predictions there and whether the held-out points fall inside the
prediction intervals. ``leave_one_group_out`` refits without each group in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
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


def _predict_holdout(form: LawForm, train: Any, test: Any, target: str,
                     columns: Mapping[str, str] | None, fit_kwargs: Mapping[str, Any]
                     ) -> tuple[FitResult, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    res = fit(form, train, target=target, columns=columns, **fit_kwargs)
    cols = dict(columns or {})
    inputs: dict[str, Any] = {k: column(test, cols.get(k, k)) for k in form.inputs}
    pred = res.predict(form=form, kind="observation", **inputs)
    return res, column(test, target), np.array(pred.value), np.array(pred.lower), np.array(pred.upper)


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


def extrapolation_check(form: LawForm, data: Any, *, by: str, n_holdout: int = 1, target: str = "loss",
                        columns: Mapping[str, str] | None = None, **fit_kwargs: Any) -> ExtrapolationResult:
    """Fit on all but the ``n_holdout`` largest values of column ``by``; predict those."""
    scale = column(data, by, role="scale to hold out")
    values = np.unique(scale)
    if not 1 <= n_holdout < len(values) - 1:
        raise ConfigError(f"n_holdout must be between 1 and {len(values) - 2} "
                          f"({len(values)} distinct values of {by!r}), got {n_holdout}")
    cut = values[-n_holdout]
    test = scale >= cut
    res, obs, pred, lo, hi = _predict_holdout(form, _subset(data, ~test), _subset(data, test), target,
                                             columns, fit_kwargs)
    parts = [(float(v), res, obs[scale[test] == v], pred[scale[test] == v], lo[scale[test] == v],
              hi[scale[test] == v]) for v in values[-n_holdout:]]
    return _collect(by, parts, res.level, "holdout-largest")


def leave_one_group_out(form: LawForm, data: Any, *, group: str, target: str = "loss",
                        columns: Mapping[str, str] | None = None, **fit_kwargs: Any) -> ExtrapolationResult:
    """For each distinct value of column ``group``: fit without it, predict it."""
    labels = column(data, group, role="group")
    parts = []
    level = 0.95
    for v in np.unique(labels):
        m = labels == v
        res, obs, pred, lo, hi = _predict_holdout(form, _subset(data, ~m), _subset(data, m), target,
                                                 columns, fit_kwargs)
        level = res.level
        parts.append((float(v), res, obs, pred, lo, hi))
    return _collect(group, parts, level, "leave-one-group-out")
