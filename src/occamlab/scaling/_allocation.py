"""Compute-optimal allocation from a fitted Chinchilla law (Hoffmann et al. 2022, Approach 3).

Minimizing ``L(N, D) = E + A N^-alpha + B D^-beta`` at fixed training compute ``C = 6 N D`` gives

    N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,   a = beta/(alpha+beta),  b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta)).

Intervals come from the fit's bootstrap draws when it has them, and otherwise from draws of the
internal parameters from the Gaussian with the Hessian covariance (a parametric bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, check_seed
from occamlab.scaling._data import column, data_rows
from occamlab.scaling._result import FitResult

__all__ = ["Allocation", "optimal_allocation", "allocation_from_params", "tokens_from_flops",
           "default_budgets"]


def tokens_from_flops(data: Any, *, n: str = "N", flops: str = "C", source: str = "data") -> np.ndarray:
    """Training tokens from training compute: ``D = C / (6 N)`` per row (Kaplan et al. 2020).

    Parameters
    ----------
    data : pandas.DataFrame or mapping of arrays
    n : str
        Column of model sizes ``N`` (parameters).
    flops : str
        Column of training compute ``C`` (FLOPs).
    source : str
        Name of the data in error messages.

    Returns
    -------
    numpy.ndarray
        ``D`` (tokens), shape ``(rows,)``.

    Raises
    ------
    DataError
        A missing or non-numeric column, or a non-finite or non-positive ``N`` or ``C``.

    >>> tokens_from_flops({"N": [1e6, 2e6], "C": [6e12, 6e12]}).tolist()
    [1000000.0, 500000.0]
    """
    C = column(data, flops, source=source, role="training compute")
    N = column(data, n, source=source, role="model size")
    for name, v in ((flops, C), (n, N)):
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            raise DataError(f"{source}: column {name!r} must be positive and finite to compute "
                            f"D = C / (6 N); data rows {data_rows(bad)} are not")
    return C / (6.0 * N)


def default_budgets(result: FitResult, *, n_budgets: int = 6, span: float = 100.0) -> np.ndarray:
    """Compute budgets at which to report an allocation: ``n_budgets`` values log-spaced from the
    smallest training compute ``C = 6 N D`` of the fitted data to ``span`` times the largest,
    rounded to 2 significant digits.

    Parameters
    ----------
    result : FitResult
        A fit whose inputs include ``N`` and ``D`` (Chinchilla, Kaplan).
    n_budgets : int
        How many budgets.
    span : float
        How far past the largest budget of the data to go (a factor, >= 1).

    Returns
    -------
    numpy.ndarray
        Budgets in FLOPs, shape ``(n_budgets,)``, increasing.
    """
    if "N" not in result.inputs or "D" not in result.inputs:
        raise ConfigError(f"default budgets need a fit with inputs N and D, got {list(result.inputs)}")
    if n_budgets < 1 or not span >= 1:
        raise ConfigError(f"need n_budgets >= 1 and span >= 1, got {n_budgets} and {span}")
    N = np.asarray(result.inputs["N"])
    D = np.asarray(result.inputs["D"])
    c = 6 * N * D
    budgets = np.geomspace(c.min(), c.max() * span, n_budgets)
    return np.array([float(f"{b:.2g}") for b in budgets])


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

    @property
    def warnings(self) -> tuple[str, ...]:
        """What is undefined: a non-finite optimum, or intervals that could not be made (a fit with
        no bootstrap draws and a singular covariance, or draws that all failed)."""
        point = (*self.n_opt, *self.d_opt, *self.tokens_per_param, *self.loss, self.a, self.b)
        bounds = [v for pairs in (self.n_opt_ci, self.d_opt_ci, self.tokens_per_param_ci,
                                  (self.a_ci, self.b_ci)) for pair in pairs for v in pair]
        out = []
        if not all(math.isfinite(v) for v in point):
            out.append("the compute-optimal allocation is not finite at some budget")
        if not all(math.isfinite(v) for v in bounds):
            out.append(f"some intervals are undefined (intervals: {self.method})")
        return tuple(out)

    @property
    def valid(self) -> bool:
        """Every point value and interval bound is finite (no ``warnings``)."""
        return not self.warnings

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


def _percentiles(theta: np.ndarray, C: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """Percentile intervals of ``N_opt, D_opt, D/N`` (each ``(2, budgets)``) and of ``a, b``
    (each ``(2,)``) over draws ``theta`` (draws, 5) of Chinchilla's internal parameters; NaN
    without draws."""
    q = (1 - level) / 2
    if not len(theta):
        nan2 = np.full((2, len(C)), np.nan)
        return nan2, nan2, nan2, np.array([np.nan, np.nan]), np.array([np.nan, np.nan])
    nat = np.exp(theta[:, :3])
    al, be = theta[:, 3:4], theta[:, 4:5]
    d = allocation_from_params(nat[:, 0:1], nat[:, 1:2], nat[:, 2:3], al, be, C[None, :])

    def ci(v: np.ndarray) -> np.ndarray:
        return np.nanquantile(v, [q, 1 - q], axis=0)

    return ci(d["n_opt"]), ci(d["d_opt"]), ci(d["tokens_per_param"]), ci(d["a"][:, 0]), ci(d["b"][:, 0])


def optimal_allocation(
    result: FitResult,
    compute: Sequence[float] | float | np.ndarray,
    *,
    level: float | None = None,
    n_draws: int = 4000,
    seed: int = 0,
) -> Allocation:
    """Compute-optimal allocation at budgets ``compute`` (FLOPs) from a Chinchilla fit.

    ``N_opt = G (C/6)^a``, ``D_opt = G^-1 (C/6)^b`` with ``a = beta/(alpha+beta)``,
    ``b = alpha/(alpha+beta)``, ``G = (alpha A / (beta B))^(1/(alpha+beta))``.

    Parameters
    ----------
    result : FitResult
        A Chinchilla fit.
    compute : float or sequence
        Budgets ``C`` in FLOPs (positive, finite).
    level : float, optional
        Interval coverage (default: the fit's).
    n_draws : int
        Gaussian draws of the internal parameters when the fit has no bootstrap draws.
    seed : int
        Seed of those draws (non-negative integer).

    Returns
    -------
    Allocation
        Point values from the fitted parameters; percentile intervals over the fit's bootstrap
        draws, or over ``n_draws`` draws from ``N(theta, covariance)`` (a parametric bootstrap).
    """
    seed = check_seed(seed)
    if result.form != "chinchilla":
        raise ConfigError(f"optimal allocation needs a chinchilla fit, got {result.form!r}")
    C = np.atleast_1d(np.asarray(compute, float))
    if not np.all(np.isfinite(C) & (C > 0)):
        raise ConfigError("compute budgets must be positive and finite")
    level = result.level if level is None else level
    p = result.params
    point = allocation_from_params(p["E"], p["A"], p["B"], p["alpha"], p["beta"], C)
    theta, method = _draws(result, n_draws, seed)
    n_ci, d_ci, r_ci, a_ci, b_ci = _percentiles(theta, C, level)

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
