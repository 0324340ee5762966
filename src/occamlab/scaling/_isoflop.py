"""Chinchilla Approach 2: isoFLOP parabolas, then a power law for the optimal model size.

For each compute budget C, the losses of models of different sizes trained with that budget are
fitted by a parabola in ``ln N``; its vertex is ``N_opt(C)``. Then ``ln N_opt = ln G + a ln C``
(least squares) and, with ``D = C / (6 N)``, ``D_opt ~ C^(1-a)``. Intervals: resampling points
within each budget (all resamples solved at once as weighted normal equations).

Reference: Hoffmann et al. (2022) Approach 2; Porian et al. (2024) found ``a = 0.834`` under
Kaplan-like settings and ``a = 0.497`` with tuned settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, check_memory, check_seed
from occamlab.scaling._data import check_values, column

__all__ = ["IsoflopResult", "fit_isoflop"]


@dataclass(frozen=True)
class IsoflopResult(Rendered):
    """Per-budget optimal sizes and the fitted exponent ``a`` of ``N_opt ~ C^a``."""

    budgets: tuple[float, ...]
    n_opt: tuple[float, ...]
    n_opt_ci: tuple[tuple[float, float], ...]
    loss_opt: tuple[float, ...]
    n_points: tuple[int, ...]
    vertex_inside: tuple[bool, ...]
    a: float
    a_ci: tuple[float, float]
    b: float
    b_ci: tuple[float, float]
    G: float
    level: float
    n_bootstrap: int
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """No ``warnings``: every vertex lies inside its budget's sampled sizes and no bootstrap
        resample was dropped. (Budgets listed in ``skipped`` are left out of the fit, not failures.)"""
        return not self.warnings

    def n_opt_at(self, compute: Any) -> np.ndarray:
        """Optimal model size predicted by the power law at budgets ``compute``."""
        return self.G * np.asarray(compute, float) ** self.a

    def _tables(self) -> list[Table]:
        pct = f"{100 * self.level:g}%"
        rows = [[c, n, f"[{lo:.4g}, {hi:.4g}]", lo_, k, inside]
                for c, n, (lo, hi), lo_, k, inside in zip(
                    self.budgets, self.n_opt, self.n_opt_ci, self.loss_opt, self.n_points,
                    self.vertex_inside, strict=True)]
        notes = [f"N_opt = {self.G:.4g} C^a, a = {self.a:.4f} {pct} [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}]"
                 f"; D_opt ~ C^b, b = {self.b:.4f}",
                 f"intervals: bootstrap of points within each budget ({self.n_bootstrap} resamples)"]
        notes += [f"skipped budget {s}" for s in self.skipped]
        notes += [f"warning: {w}" for w in self.warnings]
        return [Table("Approach 2: isoFLOP parabolas", ["C (FLOPs)", "N_opt", f"N_opt {pct}",
                                                        "loss at N_opt", "points", "vertex inside"],
                      rows, notes)]


def _parabola_vertices(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares parabolas y = c2 x^2 + c1 x + c0 for each row of weights W (B, n).

    Returns vertex x, vertex y, and the curvature c2 (B,).
    """
    xm, xs = x.mean(), max(x.std(), 1e-12)
    u = (x - xm) / xs
    X = np.stack([u * u, u, np.ones_like(u)], axis=1)  # (n, 3)
    XtWX = np.einsum("np,bn,nq->bpq", X, W, X)
    XtWy = np.einsum("np,bn,n->bp", X, W, y)
    with np.errstate(all="ignore"):
        try:
            c = np.linalg.solve(XtWX + 1e-12 * np.eye(3), XtWy[..., None])[..., 0]
        except np.linalg.LinAlgError:
            c = np.stack([np.linalg.lstsq(A, b, rcond=None)[0] for A, b in zip(XtWX, XtWy, strict=True)])
        uv = -c[:, 1] / (2 * c[:, 0])
        yv = c[:, 2] - c[:, 1] ** 2 / (4 * c[:, 0])
    return xm + xs * uv, yv, c[:, 0]


def _read_isoflop(data: Any, *, n: str, loss: str, flops: str | None, d: str | None,
                  source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model sizes ``N``, losses and budgets ``C`` (column ``flops``, or ``6 N D`` rounded to 3
    significant digits), checked."""
    N = column(data, n, source=source, role="model size")
    Ls = column(data, loss, source=source, role="loss")
    names = list(data.columns) if hasattr(data, "columns") else list(data)
    if flops is not None and flops in names:
        C = column(data, flops, source=source, role="compute budget")
    elif d is not None:
        C = 6.0 * N * column(data, d, source=source, role="tokens")
        C = np.array([float(f"{c:.3g}") for c in C])
    else:
        raise ConfigError("isoflop needs a budget column (flops) or a tokens column (d)")
    check_values({n: N, loss: Ls, "budget": C}, positive=[n, loss, "budget"], source=source, min_rows=3)
    return N, Ls, C


@dataclass(frozen=True)
class _Vertex:
    """One budget's parabola: its vertex and the bootstrap vertices (``ln N``; NaN where a
    resample's parabola opens downward)."""

    ln_n_opt: float
    loss_opt: float
    n_points: int
    inside: bool
    boot_ln_n_opt: np.ndarray  # (bootstrap,), or the vertex alone without bootstrap


def _budget_vertex(N: np.ndarray, L: np.ndarray, *, window: int | None, min_points: int, bootstrap: int,
                   rng: np.random.Generator) -> _Vertex | str:
    """The parabola in ``ln N`` of one budget's points (the ``window`` sizes nearest its lowest
    loss), or why the budget is skipped."""
    order = np.argsort(N)
    x, y = np.log(N[order]), L[order]
    if window is not None and len(x) > window:
        start = min(max(int(np.argmin(y)) - window // 2, 0), len(x) - window)
        x, y = x[start : start + window], y[start : start + window]
    if len(x) < min_points or np.ptp(x) == 0:
        return f"{len(x)} points, need {min_points} distinct sizes"
    k = len(x)
    # weights (K, k) and the weighted sums of the parabola fits
    check_memory(8.0 * (bootstrap + 1) * k * 6, what=f"a bootstrap of {bootstrap} resamples")
    W = np.vstack([np.ones(k), rng.multinomial(k, np.full(k, 1 / k), size=bootstrap)]) if bootstrap \
        else np.ones((1, k))
    xv, yv, curv = _parabola_vertices(x, y, W)
    if not curv[0] > 0:
        return "the parabola opens downward: no minimum"
    bv = np.where(curv[1:] > 0, xv[1:], np.nan) if bootstrap else np.array([xv[0]])
    return _Vertex(float(xv[0]), float(yv[0]), k, bool(x.min() <= xv[0] <= x.max()), bv)


def fit_isoflop(
    data: Any,
    *,
    n: str = "N",
    loss: str = "loss",
    flops: str | None = "C",
    d: str | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    min_points: int = 4,
    window: int | None = 7,
    seed: int = 0,
    source: str = "data",
) -> IsoflopResult:
    """Approach 2 on a table of (model size, budget or tokens, loss).

    Per budget ``C``: a least-squares parabola ``loss = c2 u^2 + c1 u + c0`` in ``u = ln N``, vertex
    ``ln N_opt(C) = -c1 / (2 c2)``; then ``ln N_opt = ln G + a ln C`` by least squares and
    ``b = 1 - a`` (``D_opt ~ C^b`` with ``D = C / (6 N)``).

    Parameters
    ----------
    data : pandas.DataFrame or mapping of arrays
    n, loss : str
        Columns of model sizes ``N`` (parameters) and losses (nats).
    flops : str, optional
        Column of budgets ``C`` (FLOPs); points with equal values form an isoFLOP curve.
    d : str, optional
        Without ``flops``: column of tokens; ``C = 6 N D`` rounded to 3 significant digits.
    bootstrap : int
        Resamples of points within each budget (percentile intervals; 0: none).
    level : float
        Interval coverage.
    min_points : int
        Fewest distinct sizes for a budget's parabola (budgets with fewer are skipped).
    window : int or None
        Fit each parabola to the ``window`` sizes nearest the lowest loss of its budget (a loss
        curve over a wide range of sizes is not a parabola; Porian et al.'s 0.834 and 0.497 are
        reproduced with windows of 5 to 7 points); ``None`` uses every point.
    seed : int
        Seed of the resampling (non-negative integer).
    source : str
        Name of the data in error messages.
    """
    seed = check_seed(seed)
    if window is not None and window < 3:
        raise ConfigError(f"window must be at least 3 points (or None for all), got {window}")
    N, Ls, C = _read_isoflop(data, n=n, loss=loss, flops=flops, d=d, source=source)
    rng = np.random.default_rng(seed)
    vertices: dict[float, _Vertex] = {}
    skipped: list[str] = []
    for c in np.unique(C):
        m = C == c
        v = _budget_vertex(N[m], Ls[m], window=window, min_points=min_points, bootstrap=bootstrap, rng=rng)
        if isinstance(v, str):
            skipped.append(f"{c:.4g} ({v})")
        else:
            vertices[float(c)] = v
    if len(vertices) < 2:
        raise DataError(f"{source}: fewer than two usable isoFLOP budgets ({len(vertices)}); skipped: {skipped}")
    return _power_law(vertices, bootstrap=bootstrap, level=level, skipped=skipped)


def _power_law(vertices: Mapping[float, _Vertex], *, bootstrap: int, level: float,
               skipped: list[str]) -> IsoflopResult:
    """``ln N_opt = ln G + a ln C`` through the vertices (and through each resample's vertices for
    the interval of ``a``)."""
    q = (1 - level) / 2
    vs = list(vertices.values())
    warn = []
    if not all(v.inside for v in vs):
        warn.append("some parabola vertices lie outside the sampled sizes (extrapolated minima)")
    lc = np.log(list(vertices))
    X = np.stack([np.ones_like(lc), lc], axis=1)
    coef = np.linalg.lstsq(X, np.log([float(np.exp(v.ln_n_opt)) for v in vs]), rcond=None)[0]
    if bootstrap:
        Yb = np.stack([v.boot_ln_n_opt for v in vs], axis=1)  # (B, budgets)
        good = np.all(np.isfinite(Yb), axis=1)
        cb = np.linalg.lstsq(X, Yb[good].T, rcond=None)[0]  # (2, B)
        a_lo, a_hi = np.quantile(cb[1], [q, 1 - q])
        if (~good).any():
            warn.append(f"{int((~good).sum())} bootstrap resamples had a budget without a minimum and were dropped")
    else:
        a_lo = a_hi = coef[1]
    nci = []
    for v in vs:
        lo, hi = np.nanquantile(v.boot_ln_n_opt, [q, 1 - q]) if bootstrap else (v.ln_n_opt, v.ln_n_opt)
        nci.append((float(np.exp(lo)), float(np.exp(hi))))
    return IsoflopResult(
        budgets=tuple(vertices), n_opt=tuple(float(np.exp(v.ln_n_opt)) for v in vs), n_opt_ci=tuple(nci),
        loss_opt=tuple(v.loss_opt for v in vs), n_points=tuple(v.n_points for v in vs),
        vertex_inside=tuple(v.inside for v in vs), a=float(coef[1]),
        a_ci=(float(a_lo), float(a_hi)), b=float(1 - coef[1]), b_ci=(float(1 - a_hi), float(1 - a_lo)),
        G=float(np.exp(coef[0])), level=level, n_bootstrap=bootstrap, skipped=tuple(skipped),
        warnings=tuple(warn),
    )
