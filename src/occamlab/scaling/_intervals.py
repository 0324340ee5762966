"""The last step of :func:`occamlab.scaling.fit`: intervals from the Hessian or the bootstrap.

Both work in the fitter's internal coordinates ``theta`` (``ln`` of positive scale parameters) and
map the bounds back to natural values, so the interval of a log-scale parameter is symmetric in log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from occamlab.errors import check_memory
from occamlab.scaling._data import column
from occamlab.scaling._objective import Objective
from occamlab.scaling._optimize import minimize_batched
from occamlab.scaling._problem import Problem

__all__ = ["Intervals", "hessian_covariance", "hessian_intervals", "bootstrap_intervals",
           "singular_intervals", "fit_intervals"]

Array = np.ndarray


@dataclass(frozen=True)
class Intervals:
    """Interval bounds and standard errors of every parameter, natural units, shape ``(P,)``."""

    lower: Array
    upper: Array
    stderr: Array
    method: str
    draws: Array | None = None  # (B, P) internal bootstrap estimates, or None
    warnings: tuple[str, ...] = ()

    def pin_fixed(self, problem: Problem, natural: Array) -> Intervals:
        """Fixed parameters get the interval ``[value, value]`` and standard error 0."""
        lo, hi, se = self.lower.copy(), self.upper.copy(), self.stderr.copy()
        for j in range(problem.n_params):
            if not problem.free[j]:
                lo[j] = hi[j] = natural[j]
                se[j] = 0.0
        return Intervals(lo, hi, se, self.method, self.draws, self.warnings)


def hessian_covariance(obj: Objective, theta: Array, free: Array) -> Array | None:
    """Asymptotic covariance of the internal parameters (free ones; fixed rows/cols are 0).

    ``(J^T J)^-1 * n/(n-p) * mean(psi^2) / mean(psi')^2`` (Huber 1981, the M-estimator sandwich
    with the Gauss-Newton Hessian). For least squares this is ``s^2 (J^T J)^-1``. For the Huber
    loss, ``mean(psi')`` (the share of residuals inside delta) is kernel-smoothed, so that a small
    delta (an L1-like fit) gives the least-absolute-deviation variance ``1/(4 f(0)^2)`` instead of
    dividing by a count of the few residuals that land inside delta. ``None`` when the Hessian is
    singular or there are no more points than free parameters.
    """
    r = obj.residuals(theta)
    n = len(r)
    J = obj.form.jacobian(theta[None, :], obj.prep)[0][:, free]
    p = J.shape[1]
    if n <= p:
        return None
    if obj.loss_fn == "huber":
        d = obj.delta
        psi = np.clip(r, -d, d)
        sd = min(np.std(r), stats.iqr(r) / 1.349) if np.std(r) > 0 else 0.0
        h = 1.06 * sd * n ** (-0.2) if sd > 0 else 1e-12
        dpsi = np.mean(stats.norm.cdf((d - r) / h) - stats.norm.cdf((-d - r) / h))
        scale = np.mean(psi**2) / max(dpsi, 1e-300) ** 2
    else:
        scale = np.mean(r**2)
    scale *= n / (n - p)
    try:
        JtJ_inv = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(JtJ_inv)) or np.any(np.diag(JtJ_inv) < 0):
        return None
    P = len(theta)
    cov = np.zeros((P, P))
    cov[np.ix_(free, free)] = JtJ_inv * scale
    return cov


def hessian_intervals(problem: Problem, theta: Array, cov: Array, level: float) -> Intervals:
    """``theta_j +- z_q sd_j`` in internal coordinates, mapped to natural values; standard errors
    by the delta method (``d exp(t) = exp(t) dt`` for log-scale parameters)."""
    form = problem.form
    q = stats.norm.ppf(0.5 + level / 2)
    sd_int = np.sqrt(np.diag(cov))
    lo_i, hi_i = theta - q * sd_int, theta + q * sd_int
    natural = form.to_natural(theta)
    se_nat = np.where([p.log for p in form.params], natural * sd_int, sd_int)
    method = ("Hessian (asymptotic M-estimator covariance, Gauss-Newton Hessian); "
              "log-scale parameters' intervals are exp of symmetric intervals in log")
    return Intervals(form.to_natural(lo_i), form.to_natural(hi_i), se_nat, method)


def singular_intervals(problem: Problem) -> Intervals:
    """No intervals (NaN): the Hessian is singular and there is no bootstrap."""
    P = problem.n_params
    nan = np.full(P, np.nan)
    return Intervals(problem.form.to_natural(nan), problem.form.to_natural(nan), np.full(P, np.nan),
                     "none: the Hessian is singular (the data do not identify every parameter)",
                     warnings=("the covariance is singular: the data do not identify every parameter",))


def _resample_weights(n: int, n_boot: int, groups: Array | None, rng: np.random.Generator) -> Array:
    """Integer multiplicities ``(n_boot, n)`` of points (or of whole groups) drawn with replacement."""
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    labels, inv = np.unique(groups, return_inverse=True)
    g = len(labels)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(float)  # (B, g)
    return counts[:, inv]


def _bootstrap_refits(problem: Problem, theta: Array, cov: Array | None, W: Array, n_nearby: int,
                      rng: np.random.Generator) -> tuple[Array, Array]:
    """Refit every resample (rows of ``W``) from the optimum and ``n_nearby`` jittered starts, all
    ``B (1 + n_nearby)`` problems in one batch; the best start of each resample, and which
    resamples have a finite objective."""
    B, P = len(W), problem.n_params
    lo, hi = problem.lower, problem.upper
    sd_int: Array = np.sqrt(np.diag(cov)) if cov is not None else 0.05 * np.maximum(1.0, np.abs(theta))
    sd_int = np.where(np.isfinite(sd_int), sd_int, 0.05)
    per = 1 + n_nearby
    starts_b = np.repeat(theta[None, :], B * per, axis=0)
    jitter = rng.standard_normal((B, n_nearby, P)) * sd_int
    starts_b.reshape(B, per, P)[:, 1:, :] += jitter
    starts_b = np.clip(starts_b, lo, hi)
    base = problem.objective
    objb = Objective(base.form, base.prep, base.z, np.repeat(W, per, axis=0), loss_fn=base.loss_fn,
                     delta=base.delta)
    rb = minimize_batched(objb, starts_b, lo, hi, groups=np.repeat(np.arange(B), per))
    fb = np.where(np.isfinite(rb.f), rb.f, np.inf).reshape(B, per)
    pick = np.argmin(fb, axis=1)
    best = rb.x.reshape(B, per, P)[np.arange(B), pick]
    return best, np.isfinite(fb[np.arange(B), pick])


def bootstrap_intervals(
    problem: Problem,
    data: Any,
    theta: Array,
    cov: Array | None,
    *,
    n_resamples: int,
    groups: str | Sequence[Any] | None,
    n_nearby: int,
    level: float,
    seed: int,
    source: str,
) -> Intervals:
    """Percentile intervals over ``n_resamples`` refits on resampled points (or whole groups).

    One generator, ``default_rng(seed)``, draws first the resample weights, then the jitter of the
    nearby starts (``N(0, sd)`` with ``sd`` the Hessian standard errors, or 5% of ``max(1, |theta|)``).
    """
    rng = np.random.default_rng(seed)
    g_arr: Array | None = None
    if isinstance(groups, str):
        g_arr = column(data, groups, source=source, role="bootstrap groups")
    elif groups is not None:
        g_arr = np.asarray(groups)
    # weights (K, n) and their working copies, refits (K, P) per start: refuse before allocating
    P = len(theta)
    check_memory(8.0 * n_resamples * (3 * problem.n_points + P * (n_nearby + 3)),
                 what=f"a bootstrap of {n_resamples} resamples")
    W = _resample_weights(problem.n_points, n_resamples, g_arr, rng)
    boot, finite = _bootstrap_refits(problem, theta, cov, W, n_nearby, rng)
    warn: tuple[str, ...] = ()
    if not finite.all():
        warn = (f"{int((~finite).sum())} bootstrap resamples failed and were dropped",)
    boot = boot[finite]
    a = (1 - level) / 2
    lo_i, hi_i = np.quantile(boot, a, axis=0), np.quantile(boot, 1 - a, axis=0)
    form = problem.form
    # a spread that matches the percentile interval: the robust SD of the draws (IQR / 1.349),
    # not their SD, which one wild refit of a poorly determined scale parameter can blow up
    se_nat = stats.iqr(form.to_natural(boot), axis=0) / 1.349
    what = "groups" if g_arr is not None else "points"
    method = (f"bootstrap percentile, {len(boot)} resamples of {what}, each refitted from the "
              f"optimum and {n_nearby} nearby starts")
    return Intervals(form.to_natural(lo_i), form.to_natural(hi_i), se_nat, method, boot, warn)


def fit_intervals(
    problem: Problem,
    data: Any,
    theta: Array,
    cov: Array | None,
    *,
    bootstrap: int,
    groups: str | Sequence[Any] | None,
    n_nearby: int,
    level: float,
    seed: int,
    source: str,
) -> Intervals:
    """The intervals of a fit at the optimum ``theta``: bootstrap when ``bootstrap > 0``, else the
    Hessian's, else none (singular); fixed parameters pinned at their values."""
    if bootstrap:
        iv = bootstrap_intervals(problem, data, theta, cov, n_resamples=bootstrap, groups=groups,
                                 n_nearby=n_nearby, level=level, seed=seed, source=source)
    elif cov is not None:
        iv = hessian_intervals(problem, theta, cov, level)
    else:
        iv = singular_intervals(problem)
    return iv.pin_fixed(problem, problem.form.to_natural(theta))
