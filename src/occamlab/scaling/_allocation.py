"""Compute-optimal allocation from a fitted Chinchilla law (Hoffmann et al. 2022, Approach 3).

Minimizing ``L(N, D) = E + A N^-alpha + B D^-beta`` at fixed training compute ``C = 6 N D`` gives

    N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,   a = beta/(alpha+beta),  b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta)).

Intervals come from the fit's bootstrap draws when it has them, and otherwise from draws of the
internal parameters from the Gaussian with the Hessian covariance (a parametric bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.scaling._result import FitResult

__all__ = ["Allocation", "optimal_allocation", "allocation_from_params"]


def allocation_from_params(E: Any, A: Any, B: Any, alpha: Any, beta: Any, compute: Any) -> dict[str, Any]:
    """N_opt, D_opt, tokens per parameter and loss at compute C (arrays broadcast)."""
    E, A, B, alpha, beta, C = (np.asarray(v, float) for v in (E, A, B, alpha, beta, compute))
    s = alpha + beta
    with np.errstate(all="ignore"):
        G = (alpha * A / (beta * B)) ** (1.0 / s)
        a, b = beta / s, alpha / s
        n = G * (C / 6.0) ** a
        d = (C / 6.0) ** b / G
        loss = E + A * n**-alpha + B * d**-beta
    return {"a": a, "b": b, "G": G, "n_opt": n, "d_opt": d, "tokens_per_param": d / n, "loss": loss}


@dataclass(frozen=True)
class Allocation(Rendered):
    """Compute-optimal model size and data at given budgets, with intervals."""

    compute: tuple[float, ...]
    n_opt: tuple[float, ...]
    d_opt: tuple[float, ...]
    tokens_per_param: tuple[float, ...]
    loss: tuple[float, ...]
    n_opt_ci: tuple[tuple[float, float], ...]
    d_opt_ci: tuple[tuple[float, float], ...]
    tokens_per_param_ci: tuple[tuple[float, float], ...]
    a: float
    b: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    level: float
    method: str

    def _tables(self) -> list[Table]:
        pct = f"{100 * self.level:g}%"
        rows = [
            [c, n, f"[{nl:.3g}, {nh:.3g}]", dd, f"[{dl:.3g}, {dh:.3g}]", r, f"[{rl:.3g}, {rh:.3g}]", lo]
            for c, n, (nl, nh), dd, (dl, dh), r, (rl, rh), lo in zip(
                self.compute, self.n_opt, self.n_opt_ci, self.d_opt, self.d_opt_ci,
                self.tokens_per_param, self.tokens_per_param_ci, self.loss, strict=True)
        ]
        notes = [
            f"N_opt ~ C^a with a = {self.a:.4g} {pct} [{self.a_ci[0]:.4g}, {self.a_ci[1]:.4g}]; "
            f"D_opt ~ C^b with b = {self.b:.4g} [{self.b_ci[0]:.4g}, {self.b_ci[1]:.4g}]",
            f"intervals: {self.method}",
        ]
        return [Table("Compute-optimal allocation (C = 6 N D)",
                      ["C (FLOPs)", "N_opt", f"N {pct}", "D_opt", f"D {pct}", "D/N", f"D/N {pct}",
                       "loss"], rows, notes)]


def _draws(result: FitResult, n_draws: int, seed: int) -> tuple[np.ndarray, str]:
    if result.bootstrap:
        return np.asarray(result.bootstrap), f"bootstrap draws of the fit ({len(result.bootstrap)})"
    if result.covariance is None:
        return np.empty((0, len(result.theta))), "none (singular covariance)"
    rng = np.random.default_rng(seed)
    cov = np.asarray(result.covariance)
    draws = rng.multivariate_normal(np.asarray(result.theta), cov, size=n_draws, method="eigh")
    return draws, f"{n_draws} Gaussian draws from the Hessian covariance (parametric bootstrap)"


def optimal_allocation(
    result: FitResult,
    compute: Sequence[float] | float | np.ndarray,
    *,
    level: float | None = None,
    n_draws: int = 4000,
    seed: int = 0,
) -> Allocation:
    """Compute-optimal allocation at budgets ``compute`` (FLOPs) from a Chinchilla fit."""
    if result.form != "chinchilla":
        raise ConfigError(f"optimal allocation needs a chinchilla fit, got {result.form!r}")
    C = np.atleast_1d(np.asarray(compute, float))
    if not np.all(np.isfinite(C) & (C > 0)):
        raise ConfigError("compute budgets must be positive and finite")
    level = result.level if level is None else level
    p = result.params
    point = allocation_from_params(p["E"], p["A"], p["B"], p["alpha"], p["beta"], C)
    theta, method = _draws(result, n_draws, seed)
    q = (1 - level) / 2
    if len(theta):
        nat = np.exp(theta[:, :3])
        al, be = theta[:, 3:4], theta[:, 4:5]
        d = allocation_from_params(nat[:, 0:1], nat[:, 1:2], nat[:, 2:3], al, be, C[None, :])

        def ci(v: np.ndarray) -> np.ndarray:
            return np.nanquantile(v, [q, 1 - q], axis=0)

        n_ci, d_ci, r_ci = ci(d["n_opt"]), ci(d["d_opt"]), ci(d["tokens_per_param"])
        a_ci, b_ci = ci(d["a"][:, 0]), ci(d["b"][:, 0])
    else:
        nan2 = np.full((2, len(C)), np.nan)
        n_ci = d_ci = r_ci = nan2
        a_ci = b_ci = np.array([np.nan, np.nan])

    def pairs(v: np.ndarray) -> tuple[tuple[float, float], ...]:
        return tuple((float(lo), float(hi)) for lo, hi in zip(v[0], v[1], strict=True))

    return Allocation(
        compute=tuple(map(float, C)),
        n_opt=tuple(map(float, point["n_opt"])), d_opt=tuple(map(float, point["d_opt"])),
        tokens_per_param=tuple(map(float, point["tokens_per_param"])),
        loss=tuple(map(float, point["loss"])),
        n_opt_ci=pairs(n_ci), d_opt_ci=pairs(d_ci), tokens_per_param_ci=pairs(r_ci),
        a=float(point["a"]), b=float(point["b"]),
        a_ci=(float(a_ci[0]), float(a_ci[1])), b_ci=(float(b_ci[0]), float(b_ci[1])),
        level=level, method=method,
    )
