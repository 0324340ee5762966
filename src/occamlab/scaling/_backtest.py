"""Backtests of a law on the user's own data: refit below successive cut-offs of a scale, predict
the runs above each.

A *model* is what is refitted (the :class:`Model` protocol): a law form with the options of
:func:`fit` (:class:`FormModel`, the one built in). A backtest at cut-off ``c``
fits the model to the runs whose scale (model size, or training compute) is at most ``c`` and
predicts every run above it. Each prediction ``i`` of backtest ``j`` gives

    e_ij = ln y_hat_ij - ln y_i                          (the error, in log units),
    d_ij = log10(s_i / S_j)                              (decades beyond the largest fitted run),
    u_ij^2 = law_sd_ij^2 + noise_sd_j^2                  (the fit's own observation variance),

with ``law_sd`` the law's parameter uncertainty at the point (Hessian delta method, or bootstrap)
and ``noise_sd`` the robust scale of the fit's residuals, both in log units. Nothing above a
cut-off enters its fit; :mod:`occamlab.scaling._error_model` turns the pairs into an error model
and :mod:`occamlab.scaling._calibrate` into calibrated intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import stats

from occamlab.errors import ConfigError, ConvergenceWarning, OccamError
from occamlab.scaling._data import column
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import LawForm
from occamlab.scaling._result import FitResult, Prediction

__all__ = ["FitOptions", "Model", "FormModel", "Backtests", "subset", "choose_cutoffs",
           "run_backtests", "ONE_SIGMA"]

Array = np.ndarray
ONE_SIGMA = float(stats.norm.cdf(1.0) - stats.norm.cdf(-1.0))  # 0.6827: a +-1 sd interval


@dataclass(frozen=True)
class FitOptions:
    """The options of :func:`fit` that every refit of a check or a backtest uses."""

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

    def inputs(self, form: LawForm, data: Any) -> dict[str, Any]:
        cols = dict(self.columns or {})
        return {k: column(data, cols.get(k, k)) for k in form.inputs}


def subset(data: Any, mask: Array) -> Any:
    """The rows of a DataFrame or a mapping of arrays where ``mask`` is true."""
    if hasattr(data, "iloc"):
        return data.loc[np.asarray(mask)]
    return {k: np.asarray(v)[mask] for k, v in data.items()}


def spreads(law: Prediction, obs: Prediction) -> tuple[Array, Array, Array]:
    """``ln`` of the predicted values, and the law's and the noise's standard deviations in log
    units, from a law and an observation prediction made at the one-sigma level."""
    ln_v = np.log(np.asarray(law.value))
    with np.errstate(invalid="ignore", divide="ignore"):
        law_sd = (np.log(np.asarray(law.upper)) - np.log(np.asarray(law.lower))) / 2
        obs_sd = (np.log(np.asarray(obs.upper)) - np.log(np.asarray(obs.lower))) / 2
    law_sd = np.where(np.isfinite(law_sd), law_sd, 0.0)  # a singular fit has no law interval
    noise = np.sqrt(np.maximum(np.where(np.isfinite(obs_sd), obs_sd, 0.0) ** 2 - law_sd**2, 0.0))
    return ln_v, law_sd, noise


class Model(Protocol):
    """What a backtest refits: ``fit`` on the runs below a cut-off, ``predict`` the others."""

    @property
    def name(self) -> str: ...

    def fit(self, data: Any) -> Any: ...

    def predict(self, fitted: Any, data: Any) -> tuple[Array, Array, Array]:
        """``ln y_hat``, the law's sd and the noise sd (log units) at the rows of ``data``."""
        ...

    def observed(self, data: Any) -> Array: ...


@dataclass(frozen=True)
class FormModel:
    """A law form fitted with :func:`fit` and the given options."""

    form: LawForm
    options: FitOptions

    @property
    def name(self) -> str:
        return self.form.name

    def fit(self, data: Any) -> FitResult:
        return self.options.fit(self.form, data)

    def predict(self, fitted: FitResult, data: Any) -> tuple[Array, Array, Array]:
        x = self.options.inputs(self.form, data)
        law = fitted.predict(form=self.form, level=ONE_SIGMA, **x)
        obs = fitted.predict(form=self.form, level=ONE_SIGMA, kind="observation", **x)
        return spreads(law, obs)

    def observed(self, data: Any) -> Array:
        return column(data, self.options.target)


def choose_cutoffs(scale: Array, *, min_points: int, n_cutoffs: int, min_train_fraction: float,
                   min_scales: int = 3, by: str = "scale") -> Array:
    """Cut-offs among the distinct values of ``scale``: each leaves at least ``min_points`` runs,
    a share ``min_train_fraction`` of them and ``min_scales`` distinct values at or below it, and
    at least one run above it. Up to ``n_cutoffs`` of them, spread evenly in ``log scale`` and
    always including the largest.

    Raises
    ------
    ConfigError
        Fewer than two usable cut-offs: the data have too few scales to backtest.
    """
    values = np.unique(scale)
    need = max(min_points, int(np.ceil(min_train_fraction * len(scale))))
    ok = [v for k, v in enumerate(values[:-1])
          if k + 1 >= min_scales and int(np.sum(scale <= v)) >= need]
    if len(ok) < 2:
        raise ConfigError(
            f"too few scales to backtest: {len(values)} distinct values of {by!r}, of which "
            f"{len(ok)} leave at least {need} runs ({100 * min_train_fraction:g}% of "
            f"{len(scale)}, and no fewer than {min_points}) and {min_scales} distinct values "
            "below a cut-off with runs above it; calibration needs at least 2 such cut-offs. "
            "Add runs at more scales, or lower min_train_fraction")
    cand = np.array(ok)
    if len(cand) <= n_cutoffs:
        return cand
    targets = np.geomspace(cand[0], cand[-1], n_cutoffs)
    pick = sorted({int(np.argmin(np.abs(np.log(cand) - np.log(t)))) for t in targets})
    return cand[pick]


@dataclass(frozen=True)
class Backtests:
    """Every prediction of every backtest (flat arrays, one entry per (cut-off, run) pair)."""

    cutoff: Array  # the cut-off of the pair's backtest
    index: Array  # the row of the data predicted
    scale: Array
    distance: Array  # decades beyond the largest fitted scale
    observed: Array
    ln_predicted: Array
    law_sd: Array
    noise_sd: Array
    fits: tuple[Any, ...]  # the refit of each cut-off (in order)
    cutoffs: Array
    warnings: tuple[str, ...]

    @property
    def error(self) -> Array:
        return self.ln_predicted - np.log(self.observed)

    @property
    def u2(self) -> Array:
        return self.law_sd**2 + self.noise_sd**2


def run_backtests(model: Model, data: Any, scale: Array, cutoffs: Array) -> Backtests:
    """Refit ``model`` on the runs with ``scale <= c`` for each cut-off ``c``; predict the rest.

    A refit that fails (too few points for the form, say) is left out, with a warning.
    """
    y = model.observed(data)
    parts: list[tuple[float, Array, Array, Array, Array]] = []
    fits, used, warn = [], [], []
    for c in cutoffs:
        train = scale <= c
        try:
            with warnings.catch_warnings():  # a refit's convergence is in its own diagnostics
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted = model.fit(subset(data, train))
        except OccamError as exc:
            warn.append(f"{model.name}: the refit below {c:.4g} failed ({exc}); left out")
            continue
        lnv, law_sd, noise = model.predict(fitted, subset(data, ~train))
        parts.append((float(c), np.flatnonzero(~train), lnv, law_sd, noise))
        fits.append(fitted)
        used.append(float(c))
    if not parts:
        raise ConfigError(f"{model.name}: every backtest refit failed: {'; '.join(warn)}")
    cut = np.concatenate([np.full(len(p[1]), p[0]) for p in parts])
    idx = np.concatenate([p[1] for p in parts])
    fitted_max = np.array([float(np.max(scale[scale <= c])) for c in cut])
    return Backtests(cutoff=cut, index=idx, scale=scale[idx],
                     distance=np.log10(scale[idx] / fitted_max), observed=y[idx],
                     ln_predicted=np.concatenate([p[2] for p in parts]),
                     law_sd=np.concatenate([p[3] for p in parts]),
                     noise_sd=np.concatenate([p[4] for p in parts]), fits=tuple(fits),
                     cutoffs=np.array(used), warnings=tuple(warn))
