"""A batched Levenberg-Marquardt / IRLS minimizer: many independent fits advanced in lockstep.

Multi-start fits and bootstrap resamples are S independent problems over the same data. Running
them as one array program (``(S, P)`` parameters, ``(S, n)`` residuals, ``(S, P, P)`` normal
equations) replaces S Python-level optimizer loops by one, which is where the speed of
:func:`occamlab.scaling.fit` comes from.

Each iteration solves ``(G + lambda diag(G)) d = -g`` per problem, with ``G`` the Gauss-Newton
matrix of the iteratively reweighted quadratic that majorizes the Huber loss, and accepts the step
only if the true objective decreases (lambda shrinks on success and grows on failure). Stopping is
relative to the objective's own value, never absolute (REFERENCE.md: SciPy's L-BFGS-B test is
effectively absolute for objectives near 1e-4 and stops at the start). The caller polishes the best
result with a second optimizer; this stage only has to find the right basin, fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occamlab.scaling._objective import Objective

__all__ = ["BatchResult", "minimize_batched"]

Array = np.ndarray


@dataclass(frozen=True)
class BatchResult:
    x: Array  # (S, P)
    f: Array  # (S,)
    converged: Array  # (S,) bool
    abandoned: Array  # (S,) bool: dropped because far worse than the best start
    n_iter: Array  # (S,) int
    n_evals: int


def minimize_batched(
    obj: Objective,
    x0: Array,
    lower: Array,
    upper: Array,
    *,
    max_iter: int = 500,
    ftol: float = 1e-13,
    patience: int = 4,
    max_step: float = 5.0,
    prune_after: int | None = 10,
    prune_factor: float = 3.0,
    groups: Array | None = None,
) -> BatchResult:
    """Minimize S problems at once from starts ``x0`` (S, P) within bounds (P,).

    A problem stops when its relative decrease stays below ``ftol`` for ``patience`` iterations
    (rejected steps count) or when its damping saturates. After ``prune_after`` iterations, a
    problem whose objective exceeds ``prune_factor`` times the best objective *of its group*
    (``groups``: one label per row, e.g. a bootstrap resample; default all rows one group) is
    abandoned: it is on its way to a worse optimum or crawling on a plateau, and the best start of
    its group is already better. ``prune_after=None`` never abandons.
    """
    S, P = x0.shape
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    free = lo < hi
    X = np.clip(np.array(x0, dtype=float), lo, hi)
    F = obj.values(X, np.arange(S))
    n_evals = S
    lam = np.full(S, 1e-3)
    stall = np.zeros(S, int)
    n_iter = np.zeros(S, int)
    converged = np.zeros(S, bool)
    abandoned = ~np.isfinite(F)
    grp = np.zeros(S, int) if groups is None else np.unique(groups, return_inverse=True)[1]
    active = np.flatnonzero(np.isfinite(F))
    eye = np.eye(P)
    for it in range(max_iter):
        if len(active) == 0:
            break
        xa = X[active]
        f, g, G = obj.gauss_newton(xa, active)
        n_evals += len(active)
        g[:, ~free] = 0.0
        G[:, ~free, :] = 0.0
        G[:, :, ~free] = 0.0
        diag = np.einsum("kpp->kp", G)
        scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        A = G + lam[active, None, None] * scale[:, :, None] * eye + np.where(free, 0.0, 1.0) * eye
        try:
            step = np.linalg.solve(A, -g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(a, -b, rcond=None)[0] for a, b in zip(A, g, strict=True)])
        step = np.where(np.isfinite(step), step, 0.0)
        big = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, max_step / np.maximum(big, 1e-300))[:, None]
        xn = np.clip(xa + step, lo, hi)
        fn = obj.values(xn, active)
        n_evals += len(active)
        fa = F[active]
        ok = np.isfinite(fn) & (fn < fa)
        rel = np.where(ok, (fa - fn) / np.maximum(np.abs(fn), 1e-300), 0.0)
        X[active[ok]] = xn[ok]
        F[active[ok]] = fn[ok]
        lam[active] = np.where(ok, np.maximum(lam[active] / 3.0, 1e-10), lam[active] * 4.0)
        stall[active] = np.where(rel < ftol, stall[active] + 1, 0)
        n_iter[active] = it + 1
        done = (stall[active] >= patience) | (lam[active] > 1e10)
        converged[active[done]] = True
        keep = ~done
        if prune_after is not None and it + 1 >= prune_after:
            best = np.full(grp.max() + 1, np.inf)
            np.minimum.at(best, grp, F)
            worse = F[active] > prune_factor * best[grp[active]]
            abandoned[active[worse & keep]] = True
            keep &= ~worse
        active = active[keep]
    return BatchResult(X, F, converged, abandoned, n_iter, n_evals)
