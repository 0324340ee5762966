r"""How the error of an extrapolation grows with its distance, measured by backtests.

Model. A prediction ``d`` decades beyond the largest fitted run misses the measured value by
``e = ln y_hat - ln y`` with

.. math::

    e \sim \mathcal N\!\left(0,\; u^2 + k^2 d^{2p}\right), \qquad u^2 = s_{law}^2 + s_{noise}^2,

where ``s_law`` is the law's own parameter uncertainty at the point (delta method or bootstrap),
``s_noise`` the scatter of runs around the law (the robust scale of the fit's residuals) and ``k``
the growth, per decade, of the error that neither accounts for: a law that bends beyond the fitted
range, a systematic bias. The extra term is ``k d^p`` with ``p`` in {0, 0.25, ..., 2}; ``p = 0``
is a constant error of any extrapolation (``d > 0``; none at ``d = 0``, inside the fitted range).
``k`` is the weighted maximum-likelihood estimate over the backtest pairs: the pairs of backtest
``j`` (cut-offs in increasing order, ``j = 1..J``) share a weight proportional to ``j``, so a
backtest with many runs above its cut-off does not outvote one with few, and the later backtests,
fitted to more of the range as the final fit is, count more. A bias shows up in ``k`` too: errors
of a constant sign have a large mean square, and the interval, symmetric about the prediction,
widens until it covers them.

The calibrated interval at level ``1 - a`` is ``ln y_hat +- z_{1-a/2} sqrt(u^2 + k^2 d^(2p))``.
Its coverage is checked honestly by nesting: the intervals of backtest ``j`` use the ``k`` of the
earlier backtests only (cut-offs below ``c_j``, predictions of runs at or below ``c_j``), so no
run that a backtest predicts has set the width of its own interval.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from occamlab.scaling._backtest import Backtests

__all__ = ["fit_error_model", "backtest_weights", "nested_intervals", "weighted_rms", "POWERS",
           "dpow"]

Array = np.ndarray
_FLOOR = 1e-12  # a variance floor: exact synthetic data have no noise at all
POWERS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # the growth exponents p the error model may take


def dpow(d: Array, p: float) -> Array:
    """``d^p`` for ``d > 0`` and 0 at ``d <= 0`` (inside the fitted range), ``p = 0`` included."""
    d = np.asarray(d, float)
    return np.where(d > 0, np.abs(d) ** p, 0.0)


def backtest_weights(cutoff: Array, *, recency: bool = True) -> Array:
    """Weight ``j / n_j`` for each pair of backtest ``j`` (rank of its cut-off, from 1; ``n_j`` its
    pairs), or ``1 / n_j`` without ``recency``; summing to 1."""
    cuts, inv, counts = np.unique(cutoff, return_inverse=True, return_counts=True)
    w = (inv + 1.0 if recency else 1.0) / counts[inv]
    return w / w.sum()


def weighted_rms(error: Array, cutoff: Array) -> float:
    """Root mean square of the errors, each backtest weighted equally."""
    return float(np.sqrt(np.sum(backtest_weights(cutoff, recency=False) * error**2)))


def _nll(k: float, e2: Array, u2: Array, dp2: Array, w: Array) -> float:
    v = u2 + k * k * dp2 + _FLOOR
    return float(np.sum(w * (np.log(v) + e2 / v)))


def _ml_slope(e2: Array, u2: Array, dp2: Array, w: Array) -> tuple[float, float]:
    """Maximum-likelihood ``k >= 0`` for given ``d^(2p)``: a grid over ``log k`` (and ``k = 0``),
    then Brent's method around the best grid point. Returns ``(k, nll)``."""
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 10.0, 141)])
    vals = np.array([_nll(k, e2, u2, dp2, w) for k in grid])
    i = int(np.argmin(vals))
    if i == 0:
        return 0.0, float(vals[0])
    lo, hi = grid[i - 1], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(_nll, bounds=(lo, hi), args=(e2, u2, dp2, w), method="bounded",
                                   options={"xatol": 1e-10 * max(hi, 1e-6)})
    if res.fun <= vals[i]:
        return float(res.x), float(res.fun)
    return float(grid[i]), float(vals[i])


def _quantile_slope(error: Array, u2: Array, dp: Array, w: Array, level: float) -> float:
    """The least ``k`` at which the intervals ``+- z sqrt(u^2 + k^2 d^(2p))`` cover a weighted
    share ``level`` of the pairs: the weighted ``level`` quantile of the ``k`` each pair needs."""
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.sqrt(np.maximum((error / z) ** 2 - u2, 0.0)) / dp
    need = np.where(dp > 0, need, 0.0)  # a run inside the fitted range: no k can widen it
    need = np.where(np.isfinite(need), need, 0.0)
    order = np.argsort(need)
    cum = np.cumsum(w[order]) / np.sum(w)
    i = min(int(np.searchsorted(cum, level - 1e-12)), len(order) - 1)
    return float(need[order][i])


def fit_error_model(error: Array, u2: Array, distance: Array, weights: Array, level: float,
                    powers: tuple[float, ...] = POWERS) -> tuple[float, float]:
    """The error model's ``(k, p)``: ``p`` and ``k`` by weighted maximum likelihood, ``p`` over
    ``powers``; then ``k`` raised, if need be, to the least value at which the backtests' own
    intervals cover a weighted share ``level`` of their runs (heavy tails, a few runs far off
    the law, are what Gaussian likelihood underweights)."""
    e2 = error**2
    best = min(((*_ml_slope(e2, u2, dpow(distance, 2 * p), weights), p) for p in powers),
               key=lambda t: t[1])
    k_ml, _, p = best
    k_q = _quantile_slope(error, u2, dpow(distance, p), weights, level)
    return max(k_ml, k_q), p


def nested_intervals(bt: Backtests, level: float) -> tuple[Array, Array, Array, Array]:
    """The honest intervals of every backtest pair and the slopes that made them.

    For backtest ``j`` (cut-offs in increasing order): ``k_j`` from the pairs of earlier
    backtests whose predicted run lies at or below ``c_j``; the interval of each of its pairs is
    ``exp(ln y_hat +- z sqrt(u^2 + k_j^2 d^(2p)))``. The first backtest has no earlier one: its pairs
    get NaN (not evaluated). Returns ``(lower, upper, slope_of_pair, old)`` where ``old`` (2, n)
    stacks the lower and upper ends of the fit's own observation interval (``k = 0``).
    """
    z = stats.norm.ppf(0.5 + level / 2)
    e, u2 = bt.error, bt.u2
    lower = np.full(len(e), np.nan)
    upper = np.full(len(e), np.nan)
    slope = np.full(len(e), np.nan)
    for j, c in enumerate(bt.cutoffs):
        now = bt.cutoff == c
        if j == 0:
            continue
        past = (bt.cutoff < c) & (bt.scale <= c)
        if not past.any():
            continue
        k, p = fit_error_model(e[past], u2[past], bt.distance[past],
                               backtest_weights(bt.cutoff[past]), level)
        half = z * np.sqrt(u2[now] + (k * dpow(bt.distance[now], p)) ** 2)
        lower[now] = np.exp(bt.ln_predicted[now] - half)
        upper[now] = np.exp(bt.ln_predicted[now] + half)
        slope[now] = k
    half_old = z * np.sqrt(u2)
    return lower, upper, slope, np.stack([np.exp(bt.ln_predicted - half_old),
                                          np.exp(bt.ln_predicted + half_old)])
