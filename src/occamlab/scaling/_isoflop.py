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
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table, jsonable
from occamlab.errors import ConfigError, DataError, check_seed
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

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IsoflopResult:
        return cls(
            budgets=tuple(map(float, d["budgets"])), n_opt=tuple(map(float, d["n_opt"])),
            n_opt_ci=tuple((float(a), float(b)) for a, b in d["n_opt_ci"]),
            loss_opt=tuple(map(float, d["loss_opt"])), n_points=tuple(map(int, d["n_points"])),
            vertex_inside=tuple(map(bool, d["vertex_inside"])), a=float(d["a"]),
            a_ci=(float(d["a_ci"][0]), float(d["a_ci"][1])), b=float(d["b"]),
            b_ci=(float(d["b_ci"][0]), float(d["b_ci"][1])), G=float(d["G"]),
            level=float(d["level"]), n_bootstrap=int(d["n_bootstrap"]),
            skipped=tuple(d["skipped"]), warnings=tuple(d["warnings"]),
        )

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

    Budgets come from column ``flops`` (points with equal values form an isoFLOP curve); without it,
    ``C = 6 N D`` from column ``d`` is rounded to 3 significant digits to group points.
    ``window``: fit each parabola to the ``window`` sizes nearest the lowest loss of its budget
    (a loss curve over a wide range of sizes is not a parabola; Porian et al.'s 0.834 and 0.497
    are reproduced with windows of 5 to 7 points); ``None`` uses every point.
    """
    seed = check_seed(seed)
    if window is not None and window < 3:
        raise ConfigError(f"window must be at least 3 points (or None for all), got {window}")
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
    rng = np.random.default_rng(seed)
    budgets, nopt, nci, lopt, npts, inside, skipped, warn = [], [], [], [], [], [], [], []
    boot_ln = []
    q = (1 - level) / 2
    for c in np.unique(C):
        m = C == c
        order = np.argsort(N[m])
        x, y = np.log(N[m][order]), Ls[m][order]
        if window is not None and len(x) > window:
            start = min(max(int(np.argmin(y)) - window // 2, 0), len(x) - window)
            x, y = x[start : start + window], y[start : start + window]
        if len(x) < min_points or np.ptp(x) == 0:
            skipped.append(f"{c:.4g} ({len(x)} points, need {min_points} distinct sizes)")
            continue
        k = len(x)
        W = np.vstack([np.ones(k), rng.multinomial(k, np.full(k, 1 / k), size=bootstrap)]) if bootstrap \
            else np.ones((1, k))
        xv, yv, curv = _parabola_vertices(x, y, W)
        if not curv[0] > 0:
            skipped.append(f"{c:.4g} (the parabola opens downward: no minimum)")
            continue
        ok = curv > 0
        budgets.append(float(c))
        nopt.append(float(np.exp(xv[0])))
        lopt.append(float(yv[0]))
        npts.append(k)
        inside.append(bool(x.min() <= xv[0] <= x.max()))
        bv = np.where(ok[1:], xv[1:], np.nan) if bootstrap else np.array([xv[0]])
        boot_ln.append(bv)
        lo, hi = np.nanquantile(bv, [q, 1 - q]) if bootstrap else (xv[0], xv[0])
        nci.append((float(np.exp(lo)), float(np.exp(hi))))
    if len(budgets) < 2:
        raise DataError(f"{source}: fewer than two usable isoFLOP budgets ({len(budgets)}); skipped: {skipped}")
    if not all(inside):
        warn.append("some parabola vertices lie outside the sampled sizes (extrapolated minima)")
    lc = np.log(budgets)
    X = np.stack([np.ones_like(lc), lc], axis=1)
    coef = np.linalg.lstsq(X, np.log(nopt), rcond=None)[0]
    if bootstrap:
        Yb = np.stack(boot_ln, axis=1)  # (B, budgets)
        good = np.all(np.isfinite(Yb), axis=1)
        cb = np.linalg.lstsq(X, Yb[good].T, rcond=None)[0]  # (2, B)
        a_lo, a_hi = np.quantile(cb[1], [q, 1 - q])
        if (~good).any():
            warn.append(f"{int((~good).sum())} bootstrap resamples had a budget without a minimum and were dropped")
    else:
        a_lo = a_hi = coef[1]
    return IsoflopResult(
        budgets=tuple(budgets), n_opt=tuple(nopt), n_opt_ci=tuple(nci), loss_opt=tuple(lopt),
        n_points=tuple(npts), vertex_inside=tuple(inside), a=float(coef[1]),
        a_ci=(float(a_lo), float(a_hi)), b=float(1 - coef[1]), b_ci=(float(1 - a_hi), float(1 - a_lo)),
        G=float(np.exp(coef[0])), level=level, n_bootstrap=bootstrap, skipped=tuple(skipped),
        warnings=tuple(warn),
    )
