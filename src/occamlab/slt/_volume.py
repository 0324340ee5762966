"""The volume law of near-optimal parameters, measured by nested sampling (dynesty).

Watanabe's learning coefficient is the exponent of the prior volume of near-optimal parameters:
with ``K(w)`` the population loss minus its minimum and ``phi`` the prior,

    V(eps) = Pr_phi(K(w) < eps) ~ c eps^lambda (-log eps)^(m - 1)      (eps -> 0),

and the two-part code over eps-balls has redundancy ``R_n = min_eps [-log V(eps) + n eps]``,
which is ``lambda log n - (m - 1) log log n + O(1)`` (Urdshals et al. 2025, arXiv:2510.12077);
the Bayesian free energy ``F_n = -log int exp(-n K(w)) phi(w) dw`` has the same expansion
(Watanabe 2009). Nested sampling (Skilling 2006) of the likelihood ``exp(-K(w))`` under ``phi``
walks up the likelihood contours and estimates the prior mass ``X_i`` inside each contour
``K < K_i``: the dead points *are* ``V`` (``V(K_i) = X_i``), and one run gives ``V``, ``R_n`` and
``F_n`` at every ``n`` (``Z(n) = sum_i exp(-n K_i) (X_{i-1} - X_i)``).

:func:`measure_volume` runs dynesty (``pip install dynesty``; imported lazily) down to
``eps_min``, merges repeated runs, and takes its uncertainty from dynesty's own error model
(each replicate resamples the run's live-point strands and jitters the prior volumes:
``resample_run`` then ``jitter_run``). ``lambda`` is fitted from ``log V`` against ``log eps`` on
``fit_range`` for each multiplicity ``m = 1, 2, 3`` (offset ``(m - 1) log(-log eps)``); the ``m``
with the smallest residual is chosen, in every replicate, so the interval includes the choice.
``m`` is *identified* when one value wins in at least 90% of the replicates. A free fit
(``lambda`` and a continuous ``m``) is reported beside it: over a few decades ``log(-log eps)``
is almost collinear with ``log eps``, which is why ``m`` is hard to measure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, OccamError, check_seed

__all__ = ["VolumeLaw", "measure_volume", "import_dynesty", "fit_volume_law",
           "two_part_redundancy", "free_energy"]

M_CHOICES = (1, 2, 3)


def import_dynesty() -> Any:
    """The ``dynesty`` module, or an :class:`OccamError` saying how to install it."""
    try:
        import dynesty
    except ImportError:
        raise OccamError("the volume law needs dynesty: pip install dynesty (or the occamlab "
                         "extra: pip install 'occamlab[mdl]')") from None
    return dynesty


@dataclass(frozen=True)
class VolumeLaw(Rendered):
    """``V(eps)``, ``R_n`` and ``F_n`` measured by nested sampling, and the fitted ``lambda``, ``m``.

    Natural logarithms throughout (``R_n``, ``F_n`` in nats). ``*_lo`` / ``*_hi`` are the
    ``level`` percentile band over the replicates (resampled and jittered runs). ``lambda_``
    is the fit at the chosen multiplicity ``multiplicity`` (chosen in ``m_share`` of the
    replicates); ``lambda_free`` and ``m_free`` are the free fit. ``truth_lambda`` and
    ``truth_m`` are the exact values when known, and ``lambda_at_true_m`` the fit with ``m``
    fixed at the exact value (which separates the error of ``lambda`` from that of ``m``).
    ``sampler_notes`` are dynesty's own messages (for example slice intervals expanded many
    times where a contour is much thinner than its bound): shown, not counted as failures.
    """

    name: str
    n_params: int
    eps: tuple[float, ...]
    log_volume: tuple[float, ...]
    log_volume_lo: tuple[float, ...]
    log_volume_hi: tuple[float, ...]
    fit_range: tuple[float, float]
    lambda_: float
    lambda_ci: tuple[float, float]
    multiplicity: int
    m_share: float
    lambda_free: float
    lambda_free_ci: tuple[float, float]
    m_free: float
    m_free_ci: tuple[float, float]
    n_values: tuple[float, ...]
    redundancy: tuple[float, ...]
    redundancy_lo: tuple[float, ...]
    redundancy_hi: tuple[float, ...]
    free_energy: tuple[float, ...]
    free_energy_lo: tuple[float, ...]
    free_energy_hi: tuple[float, ...]
    n_live: int
    n_runs: int
    n_iter: int
    n_calls: int
    n_replicates: int
    level: float
    seconds: float
    truth_lambda: float | None = None
    truth_m: int | None = None
    lambda_at_true_m: float | None = None
    lambda_at_true_m_ci: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()
    sampler_notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """The measurement passed its own checks (``warnings`` is empty)."""
        return not self.warnings

    @property
    def m_identified(self) -> bool:
        return self.m_share >= 0.9

    @property
    def relative_error(self) -> float | None:
        if self.truth_lambda is None or self.truth_lambda == 0:
            return None
        return abs(self.lambda_ - self.truth_lambda) / self.truth_lambda

    def _tables(self) -> list[Table]:
        lo, hi = self.lambda_ci
        rows: list[list[Any]] = [
            ["lambda (volume law)", f"{self.lambda_:.4g} [{lo:.4g}, {hi:.4g}]"],
            ["m (chosen; share of replicates)", f"{self.multiplicity} ({self.m_share:.0%})"],
            ["free fit: lambda, m", f"{self.lambda_free:.4g}, {self.m_free:.3g} "
             f"[{self.m_free_ci[0]:.3g}, {self.m_free_ci[1]:.3g}]"],
            ["exact lambda (m)", "-" if self.truth_lambda is None
             else f"{self.truth_lambda:.4g} ({self.truth_m})"],
            ["lambda at the exact m", "-" if self.lambda_at_true_m is None
             else f"{self.lambda_at_true_m:.4g}"],
            ["eps measured", f"{self.eps[0]:.3g} to {self.eps[-1]:.3g}"],
            ["fit range", f"{self.fit_range[0]:.3g} to {self.fit_range[1]:.3g}"],
            ["live points x runs", f"{self.n_live} x {self.n_runs}"],
            ["iterations, likelihood calls", f"{self.n_iter}, {self.n_calls}"],
        ]
        notes = ([f"{100 * self.level:g}% bands over {self.n_replicates} resampled and jittered "
                  f"runs; {self.seconds:.1f} s"] + [f"warning: {w}" for w in self.warnings]
                 + [f"dynesty: {w}" for w in self.sampler_notes])
        return [Table(f"Volume law: {self.name} (d = {self.n_params})", ["quantity", "value"],
                      rows, notes)]


# ---- the statistics of one run (dead points: K_i descending, log X_i) ----------------------
def _log_dx(logvol: np.ndarray) -> np.ndarray:
    """``log(X_{i-1} - X_i)`` with ``X_{-1} = 1``."""
    prev = np.concatenate([[0.0], logvol[:-1]])
    return prev + np.log1p(-np.exp(np.minimum(logvol - prev, -1e-300)))


def log_volume_at(k: np.ndarray, logvol: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``log V(eps)``: the log prior mass inside the first contour ``K_i < eps``."""
    order = np.argsort(k, kind="stable")  # ascending K: log X ascending too
    ks, lv = k[order], logvol[order]
    idx = np.searchsorted(ks, eps, side="left") - 1  # last K_i < eps
    out = np.where(idx >= 0, lv[np.clip(idx, 0, None)], -np.inf)
    return np.asarray(out, dtype=float)


def fit_volume_law(eps: np.ndarray, log_v: np.ndarray, m: int | None = None
                   ) -> tuple[float, float, float]:
    """Fit ``log V = log c + lambda log eps + (m - 1) log(-log eps)`` on a log-spaced ``eps``.

    Nested sampling's error in ``log X`` is a sum of independent shrinkages, one per dead
    point: a random walk. Its generalized least squares is ordinary least squares on the
    increments ``log V(eps_{j+1}) - log V(eps_j)`` (independent, of about equal variance on a
    log-spaced grid where ``V`` is near a power law); with ``m = 1`` that makes ``lambda`` the
    slope between the ends of the range. With ``m`` given: ``(lambda, m, rss)``; ``m = None``
    fits a continuous ``m`` too. ``eps`` must lie in (0, 1), ascending.
    """
    x, ll = np.log(eps), np.log(-np.log(eps))
    dx, dl, dy = np.diff(x), np.diff(ll), np.diff(log_v)
    if m is None:
        a = np.column_stack([dx, dl])
        coef, *_ = np.linalg.lstsq(a, dy, rcond=None)
        return float(coef[0]), float(coef[1] + 1), float(np.sum((a @ coef - dy) ** 2))
    y = dy - (m - 1) * dl
    lam = float(np.sum(dx * y) / np.sum(dx * dx))
    return lam, float(m), float(np.sum((lam * dx - y) ** 2))


def two_part_redundancy(k: np.ndarray, logvol: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``R_n = min_eps [-log V(eps) + n eps]`` over the dead points (nats), for each ``n``."""
    return np.asarray([float(np.min(-logvol + nn * k)) for nn in np.atleast_1d(n)])


def free_energy(k: np.ndarray, logvol: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``F_n = -log sum_i exp(-n K_i) (X_{i-1} - X_i)``: minus the log evidence of ``exp(-n K)``."""
    from scipy.special import logsumexp

    ldx = _log_dx(logvol)
    return np.asarray([-float(logsumexp(ldx - nn * k)) for nn in np.atleast_1d(n)])


def _choose_m(eps: np.ndarray, log_v: np.ndarray, d: int) -> tuple[float, int]:
    fits = [fit_volume_law(eps, log_v, m) for m in M_CHOICES if m <= d]
    lam, m, _ = min(fits, key=lambda f: f[2])
    return lam, int(m)


@dataclass(frozen=True)
class _Stats:
    """What one replicate gives: log V on the grid, the fits, R_n and F_n."""

    log_v: np.ndarray
    lam: float
    m: int
    lam_free: float
    m_free: float
    lam_true_m: float
    red: np.ndarray
    fe: np.ndarray


def _stats(k: np.ndarray, logvol: np.ndarray, eps: np.ndarray, fit_mask: np.ndarray,
           n: np.ndarray, d: int, true_m: int | None) -> _Stats:
    log_v = log_volume_at(k, logvol, eps)
    fe_, lv_ = eps[fit_mask], log_v[fit_mask]
    ok = np.isfinite(lv_)
    lam, m = _choose_m(fe_[ok], lv_[ok], d)
    lam_free, m_free, _ = fit_volume_law(fe_[ok], lv_[ok])
    lam_t = math.nan if true_m is None else fit_volume_law(fe_[ok], lv_[ok], true_m)[0]
    return _Stats(log_v, lam, m, lam_free, m_free, lam_t, two_part_redundancy(k, logvol, n),
                  free_energy(k, logvol, n))


# ---- running dynesty -----------------------------------------------------------------------
def _check(n_live: int, n_runs: int, eps_min: float, fit_range: tuple[float, float],
           n_replicates: int, level: float) -> None:
    if isinstance(n_live, bool) or not isinstance(n_live, int) or n_live < 10:
        raise ConfigError(f"n_live must be an integer >= 10, got {n_live!r}")
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 1:
        raise ConfigError(f"n_runs must be a positive integer, got {n_runs!r}")
    if not (0 < eps_min < 1e-2):
        raise ConfigError(f"eps_min must lie in (0, 0.01), got {eps_min!r}")
    lo, hi = fit_range
    if not (eps_min <= lo < hi < 1):
        raise ConfigError(f"fit_range must satisfy eps_min <= lo < hi < 1, got {fit_range!r}")
    if n_replicates < 10 or not 0 < level < 1:
        raise ConfigError(f"n_replicates >= 10 and level in (0, 1) are required, got "
                          f"{n_replicates!r} and {level!r}")


def _run_dynesty(k_fn: Callable[[np.ndarray], float], transform: Callable[[np.ndarray], np.ndarray],
                 d: int, *, n_live: int, eps_min: float, seed: int, max_iter: int
                 ) -> tuple[Any, list[str]]:
    """One dynesty run, and the distinct messages its sampler raised (slice expansions: the
    contour is much thinner than the bound in some direction)."""
    import warnings

    dynesty = import_dynesty()

    def loglike(w: np.ndarray) -> float:
        return -float(k_fn(w))

    sampler = dynesty.NestedSampler(loglike, transform, d, nlive=n_live, bound="multi",
                                    sample="rslice", rstate=np.random.default_rng(seed))
    # dlogz = 0: the run does not stop when the evidence of exp(-K) has converged, only
    # when a dead point reaches K < eps_min (logl_max) or at max_iter
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler.run_nested(dlogz=0.0, logl_max=-eps_min, maxiter=max_iter,
                           print_progress=False, save_bounds=False)
    return sampler.results, list(dict.fromkeys(str(w.message) for w in caught))


def _replicate(runs: list[Any], rng: np.random.Generator) -> Any:
    """One replicate of the (merged) runs: each run resampled and jittered on its own, then
    merged. (dynesty's ``resample_run`` on a merged run counts one run's live points, so its
    log X falls ``n_runs`` times too fast: replicates of a lambda = 0.25 volume came out near 1.)
    A resampled run loses ``nlive``, which ``merge_runs`` needs to treat it as static."""
    from dynesty import utils as dyfunc

    parts = [dyfunc.jitter_run(dyfunc.resample_run(run, rstate=rng), rstate=rng) for run in runs]
    if len(parts) == 1:
        return parts[0]
    return dyfunc.merge_runs([dyfunc.Results({**dict(rep.items()), "nlive": run.nlive})
                              for rep, run in zip(parts, runs, strict=True)],
                             print_progress=False)


def _band(rows: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` percentile band of each column (NaN where a column has none)."""
    import warnings

    q = 100 * (1 - level) / 2
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: no band
        return np.nanpercentile(rows, q, axis=0), np.nanpercentile(rows, 100 - q, axis=0)


def _tup(a: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(a, dtype=float))


def measure_volume(
    k_fn: Callable[[np.ndarray], float],
    n_params: int,
    *,
    halfwidth: float = 1.0,
    name: str = "model",
    eps_min: float = 1e-11,
    fit_range: tuple[float, float] = (1e-10, 1e-3),
    n_live: int = 100,
    n_runs: int = 1,
    n_values: tuple[float, ...] = tuple(10.0 ** (np.arange(2, 8.25, 0.25))),
    n_replicates: int = 100,
    level: float = 0.95,
    truth: Any = None,
    max_iter: int = 500_000,
    seed: int = 0,
) -> VolumeLaw:
    """Measure ``V(eps) = Pr(K(w) < eps)`` under a uniform prior on ``[-halfwidth, halfwidth]^d``.

    Parameters
    ----------
    k_fn : callable
        ``K(w)`` for one parameter vector ``w`` of shape ``(n_params,)``: the population loss
        minus its minimum (``>= 0``, zero on the true set), in nats.
    n_params : int
        ``d``.
    halfwidth : float
        The prior box.
    eps_min : float
        The run stops at the first dead point with ``K < eps_min``; ``V`` is reported on a
        log-spaced grid from ``eps_min`` to ``0.1``.
    fit_range : (float, float)
        The ``eps`` over which ``lambda`` (and ``m``) are fitted (the asymptotic regime).
    n_live, n_runs : int
        Live points per dynesty run, and independent runs (merged).
    n_values : tuple of float
        The ``n`` at which ``R_n`` and ``F_n`` are computed.
    n_replicates, level : int, float
        Resampled-and-jittered replicates of the merged run, and the band's level.
    truth : LearningCoefficient, optional
        The exact ``lambda`` and ``m``, recorded for comparison.
    seed : int
        Seeds the runs (run ``i`` with ``seed + i``) and the replicates.

    Returns
    -------
    VolumeLaw

    Raises
    ------
    ConfigError
        A bad setting. :class:`OccamError` when dynesty is not installed.
    """
    seed = check_seed(seed)
    _check(n_live, n_runs, eps_min, fit_range, n_replicates, level)
    import_dynesty()
    from dynesty import utils as dyfunc

    t0 = time.perf_counter()
    a = float(halfwidth)

    def transform(u: np.ndarray) -> np.ndarray:
        return (2.0 * u - 1.0) * a

    done = [_run_dynesty(k_fn, transform, n_params, n_live=n_live, eps_min=eps_min,
                         seed=seed + i, max_iter=max_iter) for i in range(n_runs)]
    runs = [r for r, _ in done]
    sampler_notes = tuple(dict.fromkeys(m for _, msgs in done for m in msgs))
    merged = runs[0] if n_runs == 1 else dyfunc.merge_runs(runs, print_progress=False)
    eps = np.logspace(math.log10(eps_min), -1, int(round(4 * (-1 - math.log10(eps_min)))) + 1)
    mask = (eps >= fit_range[0]) & (eps <= fit_range[1])
    n = np.asarray(n_values, dtype=float)
    true_m = None if truth is None else int(truth.multiplicity)
    main = _stats(-merged.logl, merged.logvol, eps, mask, n, n_params, true_m)
    rng = np.random.default_rng(seed + 10_007)
    reps = []
    for _ in range(n_replicates):
        r = _replicate(runs, rng)
        reps.append(_stats(-r.logl, r.logvol, eps, mask, n, n_params, true_m))
    out = _result(name, n_params, eps, fit_range, main, reps, n, level, runs, n_live, truth,
                  time.perf_counter() - t0, eps_min)
    return replace(out, sampler_notes=sampler_notes)


def _result(name: str, d: int, eps: np.ndarray, fit_range: tuple[float, float], main: _Stats,
            reps: list[_Stats], n: np.ndarray, level: float, runs: list[Any], n_live: int,
            truth: Any, seconds: float, eps_min: float) -> VolumeLaw:
    lv_lo, lv_hi = _band(np.array([r.log_v for r in reps]), level)
    red_lo, red_hi = _band(np.array([r.red for r in reps]), level)
    fe_lo, fe_hi = _band(np.array([r.fe for r in reps]), level)
    lam_lo, lam_hi = _band(np.array([[r.lam] for r in reps]), level)
    lf_lo, lf_hi = _band(np.array([[r.lam_free] for r in reps]), level)
    mf_lo, mf_hi = _band(np.array([[r.m_free] for r in reps]), level)
    lt_lo, lt_hi = _band(np.array([[r.lam_true_m] for r in reps]), level)
    share = float(np.mean([r.m == main.m for r in reps]))
    notes = []
    if not np.all(np.isfinite(main.log_v[eps >= eps_min])):
        notes.append("V(eps) is not measured down to eps_min (the run stopped at max_iter)")
    if share < 0.9:
        notes.append(f"m is not identified: m = {main.m} wins in {share:.0%} of the replicates")
    return VolumeLaw(
        name=name, n_params=d, eps=_tup(eps), log_volume=_tup(main.log_v),
        log_volume_lo=_tup(lv_lo), log_volume_hi=_tup(lv_hi),
        fit_range=(float(fit_range[0]), float(fit_range[1])), lambda_=main.lam,
        lambda_ci=(float(lam_lo[0]), float(lam_hi[0])), multiplicity=main.m, m_share=share,
        lambda_free=main.lam_free, lambda_free_ci=(float(lf_lo[0]), float(lf_hi[0])),
        m_free=main.m_free, m_free_ci=(float(mf_lo[0]), float(mf_hi[0])), n_values=_tup(n),
        redundancy=_tup(main.red), redundancy_lo=_tup(red_lo), redundancy_hi=_tup(red_hi),
        free_energy=_tup(main.fe), free_energy_lo=_tup(fe_lo), free_energy_hi=_tup(fe_hi),
        n_live=n_live, n_runs=len(runs), n_iter=int(sum(r.niter for r in runs)),
        n_calls=int(sum(int(np.sum(r.ncall)) for r in runs)), n_replicates=len(reps),
        level=level, seconds=seconds,
        truth_lambda=None if truth is None else float(truth.lambda_),
        truth_m=None if truth is None else int(truth.multiplicity),
        lambda_at_true_m=None if truth is None else main.lam_true_m,
        lambda_at_true_m_ci=None if truth is None else (float(lt_lo[0]), float(lt_hi[0])),
        warnings=tuple(notes))
