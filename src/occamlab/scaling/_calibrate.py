r"""Extrapolation intervals calibrated by backtesting on the user's own data.

:func:`calibrate_extrapolation` refits a law on the runs below successive cut-offs of a scale
(model size, training compute), predicts the runs above each (:mod:`._backtest`), and models how
the prediction error grows with the distance ``d`` (decades beyond the largest fitted run) as

.. math::

    \ln\hat y - \ln y \sim \mathcal N\!\left(0,\; s_{law}^2 + s_{noise}^2 + (k\, d^{\,p})^2\right)

(:mod:`._error_model`). The calibrated interval at a new point at distance ``d`` is
``exp(ln y_hat +- z sqrt(s_law^2 + s_noise^2 + k^2 d^(2p)))``: the law's parameter uncertainty
and the scatter of runs around it (the old observation interval, ``k = 0``) plus the error that
backtests measured at that distance. When several forms are given, each is backtested and the one
with the least backtest error (each backtest weighted equally) is chosen; the spread of all forms'
predictions is reported beside it.

Coverage is measured honestly by nesting: the intervals of backtest ``j`` are made with the error
model of the earlier backtests only, restricted to runs at or below cut-off ``c_j``.

References
----------
Hoffmann et al. (2022), arXiv:2203.15556 (the Chinchilla law); Kaplan et al. (2020),
arXiv:2001.08361; Besiroglu et al. (2024), arXiv:2404.10102 (refitting Chinchilla, interval width);
Tashman (2000), "Out-of-sample tests of forecasting accuracy", Int. J. Forecasting 16 (rolling-origin
evaluation, the backtests here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.scaling._backtest import (
    ONE_SIGMA,
    Backtests,
    FitOptions,
    FormModel,
    choose_cutoffs,
    run_backtests,
    spreads,
)
from occamlab.scaling._data import column
from occamlab.scaling._error_model import (
    backtest_weights,
    dpow,
    fit_error_model,
    nested_intervals,
    weighted_rms,
)
from occamlab.scaling._forms import LawForm
from occamlab.scaling._result import FitResult, Prediction

__all__ = ["CalibratedExtrapolation", "calibrate_extrapolation"]

Array = np.ndarray


def _t(a: Any) -> tuple[float, ...]:
    return tuple(map(float, np.asarray(a, float).ravel()))


@dataclass(frozen=True)
class CalibratedExtrapolation(Rendered):
    """A law whose prediction intervals are calibrated by backtests on the data it was fitted to.

    ``fits`` holds the fit of every candidate form to all the data (``forms`` order), ``form`` the
    chosen one (least backtest error ``form_rms_error``, root mean square of ``ln y_hat - ln y``
    with each backtest weighted equally). The error model: ``growth`` ``k`` and ``power`` ``p`` of
    the extra log-error sd ``k d^p`` at ``d`` decades of ``by`` beyond the largest fitted run
    (``scale_max``). The backtest table (``bt_*``, one entry per (cut-off, predicted run) pair of
    the chosen form): the cut-off, the distance, observed and predicted values, the calibrated
    (nested: made from earlier backtests only; NaN for the first) and the old (observation, ``k =
    0``) intervals. ``coverage`` and ``old_coverage`` are their empirical coverage over the
    ``n_evaluated`` pairs that have a nested interval.
    """

    form: str
    by: str
    target: str
    level: float
    scale_max: float
    cutoffs: tuple[float, ...]
    n_backtests: int
    growth: float
    power: float
    forms: tuple[str, ...]
    form_rms_error: tuple[float, ...]
    fits: tuple[FitResult, ...]
    columns: Mapping[str, str]
    bt_cutoff: tuple[float, ...]
    bt_distance: tuple[float, ...]
    bt_observed: tuple[float, ...]
    bt_predicted: tuple[float, ...]
    bt_lower: tuple[float, ...]
    bt_upper: tuple[float, ...]
    bt_old_lower: tuple[float, ...]
    bt_old_upper: tuple[float, ...]
    coverage: float
    old_coverage: float
    n_evaluated: int
    warnings: tuple[str, ...] = ()

    # --- status and use ---------------------------------------------------------------------
    @property
    def fit(self) -> FitResult:
        """The chosen form's fit to all the data."""
        return self.fits[self.forms.index(self.form)]

    @property
    def valid(self) -> bool:
        """The chosen fit is valid and no backtest refit failed."""
        return self.fit.valid and not self.warnings

    @property
    def method(self) -> str:
        """How the intervals are made, in one line."""
        return (f"calibrated by {self.n_backtests} backtests of {self.form} (refits on {self.by} <= "
                f"each cut-off, {len(self.bt_cutoff)} predictions above): observation interval "
                f"widened by an extrapolation error of sd {self.growth:.3g} d^{self.power:g} in ln "
                f"{self.target}, d = decades of {self.by} beyond {self.scale_max:.4g}")

    def distance(self, scale: Any) -> Array:
        """Decades of ``by`` beyond the largest fitted run (0 inside the fitted range)."""
        s = np.asarray(scale, float)
        if np.any(~np.isfinite(s)) or np.any(s <= 0):
            raise ConfigError(f"scale ({self.by}) must be positive and finite, got {scale!r}")
        return np.maximum(np.log10(s / self.scale_max), 0.0)

    def predict(self, *, scale: Any, level: float | None = None, form: LawForm | None = None,
                **inputs: Any) -> Prediction:
        """The calibrated interval at new points.

        Parameters
        ----------
        scale : float or array
            The value of ``by`` (model size, compute, ...) at each point: sets its distance.
        level : float, optional
            Interval level (default: the calibration's level).
        form : LawForm, optional
            The chosen form object (needed for custom forms only).
        **inputs
            The form's inputs (arrays, broadcast with ``scale``).
        """
        level = self.level if level is None else float(level)
        cols: dict[str, Any] = {k: np.asarray(v, float) for k, v in inputs.items()}
        law_p = self.fit.predict(form=form, level=ONE_SIGMA, **cols)
        obs_p = self.fit.predict(form=form, level=ONE_SIGMA, kind="observation", **cols)
        ln_v, law_sd, noise = spreads(law_p, obs_p)
        d = np.broadcast_to(self.distance(scale), ln_v.shape)
        z = stats.norm.ppf(0.5 + level / 2)
        half = z * np.sqrt(law_sd**2 + noise**2 + (self.growth * dpow(d, self.power)) ** 2)
        return Prediction(inputs=law_p.inputs, value=_t(np.exp(ln_v)), lower=_t(np.exp(ln_v - half)),
                          upper=_t(np.exp(ln_v + half)), level=level, method=self.method)

    def form_predictions(self, **inputs: Any) -> dict[str, tuple[float, ...]]:
        """Each candidate form's prediction at the inputs (built-in forms), the form spread."""
        return {f.form: f.predict(**inputs).value for f in self.fits}

    def plot(self, path: str | None = None) -> Any:
        """Backtest error against distance, with the calibrated band; see
        :func:`occamlab.scaling.plot_backtests`."""
        from occamlab.scaling._plot import plot_backtests

        return plot_backtests(self, path)

    # --- rendering --------------------------------------------------------------------------
    def _tables(self) -> list[Table]:
        pct = f"{100 * self.level:g}%"
        obs, pred = np.array(self.bt_observed), np.array(self.bt_predicted)
        lo, hi = np.array(self.bt_lower), np.array(self.bt_upper)
        olo, ohi = np.array(self.bt_old_lower), np.array(self.bt_old_upper)
        rows = []
        for c in self.cutoffs:
            m = np.array(self.bt_cutoff) == c
            ev = m & np.isfinite(lo)
            cov = float(np.mean((lo[ev] <= obs[ev]) & (obs[ev] <= hi[ev]))) if ev.any() else None
            old = float(np.mean((olo[m] <= obs[m]) & (obs[m] <= ohi[m])))
            err = 100 * (pred[m] / obs[m] - 1)
            rows.append([c, int(m.sum()), float(np.max(np.array(self.bt_distance)[m])),
                         float(np.mean(np.abs(err))), float(np.max(np.abs(err))), cov, old])
        t1 = Table(f"Backtests of {self.form} by {self.by} ({self.target})",
                   ["cut-off", "runs above", "max distance (dec)", "mean |err| %", "max |err| %",
                    f"in calibrated {pct}", f"in old {pct}"], rows,
                   [self.method,
                    f"coverage over {self.n_evaluated} nested predictions: calibrated "
                    f"{self.coverage:.3g}, old (observation interval) {self.old_coverage:.3g}; the "
                    "first backtest has no earlier one to calibrate it"]
                   + [f"warning: {w}" for w in self.warnings])
        t2 = Table("Form uncertainty (chosen by backtest error)", ["form", "backtest rms ln error",
                                                                   "chosen"],
                   [[f, e, "yes" if f == self.form else ""] for f, e in
                    zip(self.forms, self.form_rms_error, strict=True)])
        return [t1, t2]


def _evaluate(bt: Backtests, level: float) -> dict[str, Any]:
    """The backtest table of the chosen form with nested calibrated and old intervals."""
    lo, hi, _, old = nested_intervals(bt, level)
    obs = bt.observed
    ev = np.isfinite(lo)
    cov = float(np.mean((lo[ev] <= obs[ev]) & (obs[ev] <= hi[ev]))) if ev.any() else float("nan")
    old_cov = (float(np.mean((old[0][ev] <= obs[ev]) & (obs[ev] <= old[1][ev]))) if ev.any()
               else float("nan"))
    return {"bt_cutoff": _t(bt.cutoff), "bt_distance": _t(bt.distance), "bt_observed": _t(obs),
            "bt_predicted": _t(np.exp(bt.ln_predicted)), "bt_lower": _t(lo), "bt_upper": _t(hi),
            "bt_old_lower": _t(old[0]), "bt_old_upper": _t(old[1]), "coverage": cov,
            "old_coverage": old_cov, "n_evaluated": int(ev.sum())}


def calibrate_extrapolation(
    form: LawForm,
    data: Any,
    *,
    by: str,
    forms: Sequence[LawForm] = (),
    target: str = "loss",
    columns: Mapping[str, str] | None = None,
    level: float = 0.95,
    n_cutoffs: int = 5,
    min_train_fraction: float = 0.3,
    loss_fn: str = "huber",
    delta: float = 1e-3,
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> CalibratedExtrapolation:
    """Fit a law and calibrate its extrapolation intervals by backtests on the same data.

    Backtest ``j`` refits on the runs with ``by <= c_j`` and predicts the runs above; the error
    model ``e ~ N(0, s_law^2 + s_noise^2 + (k d^p)^2)`` (``e = ln y_hat - ln y``, ``d`` decades of
    ``by`` beyond the largest fitted run) is fitted to all backtest pairs by maximum likelihood
    (backtest ``j`` weighted in proportion to its rank), ``p`` in {0, 0.25, ..., 2}, then ``k`` raised if need be until
    the pairs' own intervals cover ``level`` of them (heavy tails).

    Parameters
    ----------
    form : LawForm
        The law (its intervals are calibrated; with ``forms``, one candidate among several).
    data : pandas.DataFrame or mapping of arrays
    by : str
        Column of the scale that extrapolation goes along (model size, training compute); > 0.
    forms : sequence of LawForm
        Other candidate forms with the same inputs; the one of least backtest error is chosen.
    target, columns, loss_fn, delta, starts, bootstrap
        As for :func:`fit` (``starts`` is used for ``form`` only; the others use their defaults).
    level : float
        Interval level, in (0, 1).
    n_cutoffs : int
        At most this many backtests (>= 2), cut-offs spread evenly in ``log by``.
    min_train_fraction : float
        A cut-off leaves at least this share of the runs at or below it, in [0, 1).
    seed : int
        Seed of the fits' bootstrap resampling (non-negative integer).

    Returns
    -------
    CalibratedExtrapolation

    Raises
    ------
    ConfigError
        Too few scales to backtest (fewer than two cut-offs each leaving enough runs and at least
        three distinct scales below and runs above), or a bad option.
    """
    seed = check_seed(seed)
    if not 0 < level < 1 or n_cutoffs < 2 or not 0 <= min_train_fraction < 1:
        raise ConfigError(f"calibrate_extrapolation: level must be in (0, 1), n_cutoffs >= 2 and "
                          f"min_train_fraction in [0, 1); got {level}, {n_cutoffs}, {min_train_fraction}")
    candidates = [form, *forms]
    names = [f.name for f in candidates]
    if len(set(names)) < len(names):
        raise ConfigError(f"calibrate_extrapolation: candidate forms must differ, got {names}")
    scale = column(data, by, role="scale of the extrapolation")
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        raise ConfigError(f"column {by!r} (scale of the extrapolation) must be positive and finite")
    n_par = max(len(f.params) for f in candidates)
    cut = choose_cutoffs(scale, min_points=n_par + 3, n_cutoffs=n_cutoffs,
                         min_train_fraction=min_train_fraction, by=by)
    runs, fits, rms = [], [], []
    warns: list[str] = []
    for i, f in enumerate(candidates):
        opts = FitOptions(target, columns, loss_fn, delta, starts if i == 0 else None, None,
                          bootstrap, level, seed)
        bt = run_backtests(FormModel(f, opts), data, scale, cut)
        runs.append(bt)
        warns += bt.warnings
        rms.append(weighted_rms(bt.error, bt.cutoff))
        fits.append(opts.fit(f, data))
    best = int(np.argmin(rms))
    bt = runs[best]
    k, p = fit_error_model(bt.error, bt.u2, bt.distance, backtest_weights(bt.cutoff), level)
    return CalibratedExtrapolation(
        form=names[best], by=by, target=target, level=level, scale_max=float(np.max(scale)),
        cutoffs=_t(bt.cutoffs), n_backtests=len(bt.cutoffs), growth=float(k), power=float(p),
        forms=tuple(names), form_rms_error=_t(rms), fits=tuple(fits), columns=dict(columns or {}),
        warnings=tuple(warns), **_evaluate(bt, level))
