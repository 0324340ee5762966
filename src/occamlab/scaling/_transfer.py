"""Effective data transferred (Hernandez et al. 2021, "Scaling Laws for Transfer").

For a model of size N fine-tuned on ``D_F`` target tokens to loss ``L_ft``, the effective data
transferred ``D_T`` is the extra target data a same-size model trained from scratch would need to
reach ``L_ft``: ``D_T = D_E - D_F`` with ``L_scratch(D_E; N) = L_ft``. The from-scratch curve of
each size is a saturating power law ``L = E + B D^-beta`` fitted to that size's from-scratch runs,
inverted as ``D_E = (B / (L_ft - E))^(1/beta)``. Then ``D_T = k D_F^alpha N^beta`` is fitted by least
squares in log space, and the fraction of effective data from transfer is ``D_T / (D_F + D_T)``.

Intervals (``bootstrap > 0``) come from resampling the runs at both levels and redoing the whole
chain: each model size's from-scratch curve is refitted to its fitted values times resampled log
residuals (a residual bootstrap: the ladder of ``D`` is the design, and a case resample of four or
five points would often leave three distinct ones for three parameters), the fine-tuned runs are
resampled with replacement within each model size, ``D_T`` is recomputed and the law refitted.
The scratch resamples depend only on the scratch data and the seed, so two calls with the same
from-scratch runs and seed (two source distributions for one target) share them: the difference of
their draws, row by row, is a paired bootstrap of the difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, check_seed
from occamlab.scaling._data import check_values, column
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import PowerLaw, Transfer
from occamlab.scaling._result import FitResult

__all__ = ["TransferResult", "effective_data_transferred", "fit_transfer"]


@dataclass(frozen=True)
class TransferResult(Rendered):
    """Per-run effective data transferred and the fitted law ``D_T = k D_F^alpha N^beta``."""

    n: tuple[float, ...]
    d_f: tuple[float, ...]
    loss_ft: tuple[float, ...]
    d_e: tuple[float, ...]
    d_t: tuple[float, ...]
    fraction: tuple[float, ...]
    used: tuple[bool, ...]
    scratch: Mapping[str, FitResult]  # model size (as text) -> its from-scratch L(D) fit
    law: FitResult | None
    warnings: tuple[str, ...]
    # the from-scratch law's uncertainty carried into D_T: percentile interval per run over
    # draws of each size's L(D) parameters (its bootstrap, or Gaussian draws from its Hessian)
    d_t_lower: tuple[float, ...] = ()
    d_t_upper: tuple[float, ...] = ()

    @property
    def valid(self) -> bool:
        """The transfer law was fitted and is valid, and there are no ``warnings`` (which include
        every from-scratch fit's warnings and runs left out of the law)."""
        return self.law is not None and self.law.valid and not self.warnings

    def _tables(self) -> list[Table]:
        lo = self.d_t_lower or (float("nan"),) * len(self.n)
        hi = self.d_t_upper or (float("nan"),) * len(self.n)
        rows = [[n, f, lf, de, dt, a, b, fr, u] for n, f, lf, de, dt, a, b, fr, u in zip(
            self.n, self.d_f, self.loss_ft, self.d_e, self.d_t, lo, hi, self.fraction, self.used,
            strict=True)]
        out = [Table("Effective data transferred", ["N", "D_F", "fine-tuned loss", "D_E", "D_T",
                                                    "D_T 95% lower", "D_T 95% upper",
                                                    "D_T/(D_F+D_T)", "in fit"], rows,
                     ["D_T interval: the from-scratch law's parameter uncertainty carried through "
                      "D_E = (A / (L_ft - E))^(1/alpha)"]
                     + [f"warning: {w}" for w in self.warnings])]
        if self.law is not None:
            out += self.law._tables()
        return out


def effective_data_transferred(scratch: FitResult, loss_ft: Any, d_f: Any) -> np.ndarray:
    """``D_T = D_E - D_F`` from a from-scratch ``E + A x^-alpha`` fit (x = tokens); inf where the
    fine-tuned loss is at or below the from-scratch asymptote."""
    p = scratch.params
    loss_ft, d_f = np.asarray(loss_ft, float), np.asarray(d_f, float)
    E = p.get("E", 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_e = np.where(loss_ft > E, (p["A"] / (loss_ft - E)) ** (1.0 / p["alpha"]), np.inf)
    return d_e - d_f


def _d_t_interval(scratch: FitResult, loss_ft: Any, d_f: Any, *, n_draws: int = 2000,
                  level: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``D_T`` over draws of the from-scratch law's parameters: its
    bootstrap draws, or Gaussian draws from its Hessian covariance (NaN when it has neither)."""
    lf, df = np.asarray(loss_ft, float), np.asarray(d_f, float)
    if scratch.bootstrap:
        theta = np.asarray(scratch.bootstrap)
    elif scratch.covariance is not None:
        rng = np.random.default_rng(seed)
        theta = rng.multivariate_normal(np.asarray(scratch.theta), np.asarray(scratch.covariance),
                                        size=n_draws, method="eigh")
    else:
        nan = np.full(len(lf), np.nan)
        return nan, nan
    nat = PowerLaw().to_natural(theta)  # (S, 3): E, A, alpha
    E, A, al = nat[:, 0:1], nat[:, 1:2], nat[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_t = np.where(lf > E, (A / (lf - E)) ** (1.0 / al), np.inf) - df  # (S, n)
    q = (1 - level) / 2
    # no interpolation between draws: an infinite D_T (the run beat the law's floor) stays inf
    return (np.quantile(d_t, q, axis=0, method="inverted_cdf"),
            np.quantile(d_t, 1 - q, axis=0, method="inverted_cdf"))


def _power_law_refit(x: np.ndarray, y: np.ndarray, start: Mapping[str, float]
                     ) -> tuple[float, float, float] | None:
    """``(E, A, alpha)`` of ``y = E + A x^-alpha`` by least squares of log residuals, from
    ``start`` (a bootstrap refit; ``None`` when the optimizer fails)."""
    lnx, lny = np.log(x), np.log(y)

    def res(t: np.ndarray) -> np.ndarray:
        return np.logaddexp(t[0], t[1] - t[2] * lnx) - lny

    def jac(t: np.ndarray) -> np.ndarray:
        m = np.logaddexp(t[0], t[1] - t[2] * lnx)
        we, wa = np.exp(t[0] - m), np.exp(t[1] - t[2] * lnx - m)
        return np.stack([we, wa, -wa * lnx], axis=1)

    t0 = np.array([np.log(start["E"]), np.log(start["A"]), start["alpha"]])
    try:
        r = optimize.least_squares(res, t0, jac=jac, method="lm")
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not (r.success and np.all(np.isfinite(r.x)) and abs(r.x[2]) <= 10.0):
        return None
    return float(np.exp(r.x[0])), float(np.exp(r.x[1])), float(r.x[2])


def _d_t(params: tuple[float, float, float], loss_ft: np.ndarray, d_f: np.ndarray) -> np.ndarray:
    E, A, alpha = params
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_e = np.where(loss_ft > E, (A / (loss_ft - E)) ** (1.0 / alpha), np.inf)
    return d_e - d_f


def _law_ols(d_f: np.ndarray, n: np.ndarray, d_t: np.ndarray, free_beta: bool) -> np.ndarray:
    """``(ln k, alpha, beta)`` by least squares of ``ln D_T`` on the runs with a positive finite
    ``D_T`` (NaN when they cannot identify the law)."""
    ok = np.isfinite(d_t) & (d_t > 0)
    cols = [np.ones(int(ok.sum())), np.log(d_f[ok])] + ([np.log(n[ok])] if free_beta else [])
    X = np.stack(cols, axis=1)
    if ok.sum() < X.shape[1] + 1 or np.linalg.matrix_rank(X) < X.shape[1]:
        return np.full(3, np.nan)
    coef = np.linalg.lstsq(X, np.log(d_t[ok]), rcond=None)[0]
    return np.append(coef, 0.0) if not free_beta else coef


def _scratch_draws(Ns: np.ndarray, Ds: np.ndarray, Ls: np.ndarray,
                   scratch: Mapping[str, FitResult], n_boot: int, seed: int
                   ) -> list[dict[float, tuple[float, float, float] | None]]:
    """Residual-bootstrap refits of every size's from-scratch curve, one dict per resample."""
    rng = np.random.default_rng([seed, 0])
    out: list[dict[float, tuple[float, float, float] | None]] = [{} for _ in range(n_boot)]
    for size in np.unique(Ns):
        r = scratch.get(f"{size:g}")
        if r is None:  # a size that was not fine-tuned
            continue
        m = Ns == size
        x, y = Ds[m], Ls[m]
        fitted = PowerLaw().predict(r.params, x=x)
        res = np.log(y) - np.log(fitted)
        res = (res - res.mean()) * np.sqrt(len(res) / max(len(res) - 3, 1))
        picks = rng.integers(0, len(res), size=(n_boot, len(res)))
        for b in range(n_boot):
            out[b][float(size)] = _power_law_refit(x, fitted * np.exp(res[picks[b]]), r.params)
    return out


def _bootstrap_draws(Ns: np.ndarray, Ds: np.ndarray, Ls: np.ndarray, Nf: np.ndarray,
                       Df: np.ndarray, Lf: np.ndarray, scratch: Mapping[str, FitResult], *,
                       free_beta: bool, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, 3)`` draws of ``(ln k, alpha, beta)``; a failed resample is a row of NaN (rows
    stay aligned with the resample index, see the module doc)."""
    seed = check_seed(seed)
    curves = _scratch_draws(Ns, Ds, Ls, scratch, n_boot, seed)
    rng = np.random.default_rng([seed, 1])
    groups = [np.flatnonzero(Nf == size) for size in np.unique(Nf)]
    draws = np.full((n_boot, 3), np.nan)
    for b in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in groups])
        d_t = np.full(len(idx), np.nan)
        for size in np.unique(Nf):
            params = curves[b].get(float(size))
            sel = Nf[idx] == size
            if params is None:
                break
            d_t[sel] = _d_t(params, Lf[idx][sel], Df[idx][sel])
        else:
            draws[b] = _law_ols(Df[idx], Nf[idx], d_t, free_beta)
    return draws


def _with_bootstrap(law: FitResult, draws: np.ndarray, level: float) -> FitResult:
    """The law with percentile intervals and robust SDs from the bootstrap draws."""
    import dataclasses

    from scipy import stats

    ok = np.all(np.isfinite(draws), axis=1)
    good = draws[ok]
    names = law.param_names  # ("k", "alpha", "beta"); draws hold ln k
    nat = np.column_stack([np.exp(good[:, 0]), good[:, 1], good[:, 2]]) if len(good) else good
    a = (1 - level) / 2
    ci, se = {}, {}
    for j, name in enumerate(names):
        if len(good) < 2 or name in law.fixed:
            ci[name] = (law.params[name], law.params[name]) if name in law.fixed else (np.nan, np.nan)
            se[name] = 0.0 if name in law.fixed else np.nan
            continue
        ci[name] = (float(np.quantile(nat[:, j], a)), float(np.quantile(nat[:, j], 1 - a)))
        se[name] = float(stats.iqr(nat[:, j]) / 1.349)
    warn = list(law.warnings)
    if (~ok).any():
        warn.append(f"{int((~ok).sum())} of {len(draws)} bootstrap resamples could not refit the "
                    "chain (a scratch curve, or fewer usable runs than the law needs) and are "
                    "left out of the intervals")
    method = (f"bootstrap percentile over {int(ok.sum())} resamples of the runs (from-scratch "
              "curves: residual bootstrap; fine-tuned runs: resampled within each model size), "
              "the whole chain refitted")
    return dataclasses.replace(law, ci=ci, stderr=se, interval_method=method, level=level,
                               bootstrap=tuple(tuple(map(float, r)) for r in draws),
                               warnings=tuple(warn))


def fit_transfer(
    scratch_data: Any,
    finetune_data: Any,
    *,
    n: str = "N",
    d: str = "D",
    loss: str = "loss",
    d_f: str | None = None,
    loss_ft: str | None = None,
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
    source: str = "data",
) -> TransferResult:
    """From from-scratch runs (N, D, loss) and fine-tuned runs (N, D_F, loss), fit the transfer law.

    Runs whose ``D_T`` is not positive and finite (fine-tuning no better than scratch, or better than
    the scratch asymptote) are reported but left out of the fit (the law is fitted in log space).

    Parameters
    ----------
    scratch_data, finetune_data : pandas.DataFrame or mapping of arrays
        From-scratch runs (columns ``n``, ``d``, ``loss``; at least 4 per model size that was
        fine-tuned) and fine-tuned runs (``n``, ``d_f``, ``loss_ft``); losses in nats.
    n, d, loss : str
        Column names of model size ``N``, tokens ``D`` and the (best held-out) loss.
    d_f, loss_ft : str, optional
        Columns of the fine-tuned runs' tokens and loss (default: ``d`` and ``loss``).
    bootstrap : int
        Resamples of the runs for the law's intervals (0: the Hessian intervals of the
        least-squares fit, which ignore the uncertainty of the from-scratch curves).
    level : float
        Interval coverage.
    seed : int
        Seed of the bootstrap (non-negative integer; see the module doc for pairing).
    source : str
        Name of the data in error messages.

    Raises
    ------
    DataError
        A fine-tuned model size with fewer than 4 from-scratch runs; non-positive values.
    """
    seed = check_seed(seed)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ConfigError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    if not 0 < level < 1:
        raise ConfigError(f"level must lie in (0, 1), got {level!r}")
    d_f = d_f or d
    loss_ft = loss_ft or loss
    Ns = column(scratch_data, n, source=f"{source} (from scratch)")
    Ds = column(scratch_data, d, source=f"{source} (from scratch)")
    Ls = column(scratch_data, loss, source=f"{source} (from scratch)")
    check_values({d: Ds, loss: Ls}, positive=[d, loss], source=f"{source} (from scratch)")
    _check_sizes(Ns, n, f"{source} (from scratch)")
    Nf = column(finetune_data, n, source=f"{source} (fine-tuned)")
    Df = column(finetune_data, d_f, source=f"{source} (fine-tuned)")
    Lf = column(finetune_data, loss_ft, source=f"{source} (fine-tuned)")
    check_values({d_f: Df, loss_ft: Lf}, positive=[d_f, loss_ft], source=f"{source} (fine-tuned)")
    _check_sizes(Nf, n, f"{source} (fine-tuned)")
    scratch, d_e, warn = _scratch_curves(Ns, Ds, Ls, Nf, Df, Lf, source)
    d_lo, d_hi = np.full(len(Nf), np.nan), np.full(len(Nf), np.nan)
    for size in np.unique(Nf):
        mf = Nf == size
        d_lo[mf], d_hi[mf] = _d_t_interval(scratch[f"{size:g}"], Lf[mf], Df[mf])
    d_t = d_e - Df
    used = np.isfinite(d_t) & (d_t > 0)
    if (~used).any():
        warn.append(f"{int((~used).sum())} runs have no positive finite D_T (fine-tuning did not beat "
                    "scratch, or beat its asymptote) and are left out of the law")
    law = None
    if used.sum() >= 4:
        fixed = {"beta": 0.0} if len(np.unique(Nf[used])) < 2 else None
        if fixed:
            warn.append("one model size only: beta cannot be identified and is fixed at 0")
        law = (fit(Transfer(), {"D_F": Df[used], "N": Nf[used], "D_T": d_t[used]}, target="D_T",
                   loss_fn="lsq", level=level, source=source) if fixed is None else
               _one_size_law(Df[used], Nf[used], d_t[used], level, source))
        if bootstrap:
            draws = _bootstrap_draws(Ns, Ds, Ls, Nf, Df, Lf, scratch, free_beta=fixed is None,
                                       n_boot=bootstrap, seed=seed)
            law = _with_bootstrap(law, draws, level)
    else:
        warn.append("fewer than 4 usable runs: the transfer law is not fitted")
    with np.errstate(invalid="ignore"):
        frac = d_t / (Df + d_t)
    return TransferResult(
        n=tuple(map(float, Nf)), d_f=tuple(map(float, Df)), loss_ft=tuple(map(float, Lf)),
        d_e=tuple(map(float, d_e)), d_t=tuple(map(float, d_t)), fraction=tuple(map(float, frac)),
        used=tuple(map(bool, used)), scratch=scratch, law=law, warnings=tuple(warn),
        d_t_lower=tuple(map(float, d_lo)), d_t_upper=tuple(map(float, d_hi)),
    )


def _one_size_law(d_f: np.ndarray, n: np.ndarray, d_t: np.ndarray, level: float, source: str
                  ) -> FitResult:
    """``D_T = k D_F^alpha`` with ``beta`` fixed at 0 (one model size: a constant ``N`` column
    cannot be fitted against), as the transfer law's :class:`FitResult`: the pure power law
    ``D_T = A D_F^-a`` fitted, then ``k = A``, ``alpha = -a``."""
    import dataclasses

    pw = fit(PowerLaw(saturating=False), {"x": d_f, "y": d_t}, target="y", loss_fn="lsq",
             level=level, source=source)
    lo_a, hi_a = pw.ci["alpha"]
    cov = None
    if pw.covariance is not None:
        c = np.array(pw.covariance) * np.array([[1, -1], [-1, 1]])  # alpha -> -alpha
        cov = tuple(tuple(map(float, r)) for r in np.pad(c, ((0, 1), (0, 1))))
    form = Transfer()
    return dataclasses.replace(
        pw, form=form.name, formula=form.formula, param_names=form.param_names,
        params={"k": pw.params["A"], "alpha": -pw.params["alpha"], "beta": 0.0},
        stderr={"k": pw.stderr["A"], "alpha": pw.stderr["alpha"], "beta": 0.0},
        ci={"k": pw.ci["A"], "alpha": (-hi_a, -lo_a), "beta": (0.0, 0.0)},
        fixed=("beta",), at_bound=(), inputs={"D_F": pw.inputs["x"], "N": tuple(map(float, n))},
        theta=(pw.theta[0], -pw.theta[1], 0.0), covariance=cov, bootstrap=None,
        config={**dict(pw.config), "fixed": {"beta": 0.0}})


def _check_sizes(sizes: np.ndarray, name: str, source: str) -> None:
    """Model sizes: finite and positive (one size alone is allowed: beta is then fixed)."""
    bad = ~np.isfinite(sizes) | (sizes <= 0)
    if bad.any():
        raise DataError(f"{source}: column {name!r} must hold positive finite model sizes; rows "
                        f"{np.flatnonzero(bad)[:5].tolist()} do not")


def _scratch_curves(Ns: np.ndarray, Ds: np.ndarray, Ls: np.ndarray, Nf: np.ndarray,
                    Df: np.ndarray, Lf: np.ndarray, source: str
                    ) -> tuple[dict[str, FitResult], np.ndarray, list[str]]:
    """Each fine-tuned size's from-scratch ``L(D)`` fit, the runs' ``D_E``, and the fits' warnings."""
    scratch: dict[str, FitResult] = {}
    warn: list[str] = []
    d_e = np.full(len(Nf), np.nan)
    for size in np.unique(Nf):
        m = Ns == size
        if m.sum() < 4:
            raise DataError(f"{source}: model size {size:g} has {int(m.sum())} from-scratch runs; "
                            "its L(D) curve needs at least 4")
        r = fit(PowerLaw(), {"x": Ds[m], "y": Ls[m]}, target="y", loss_fn="lsq",
                source=f"{source} (scratch N={size:g})")
        scratch[f"{size:g}"] = r
        mf = Nf == size
        d_e[mf] = effective_data_transferred(r, Lf[mf], Df[mf]) + Df[mf]
        if r.warnings:
            warn += [f"scratch fit N={size:g}: {w}" for w in r.warnings]
    return scratch, d_e, warn
