"""Effective data transferred (Hernandez et al. 2021, "Scaling Laws for Transfer").

For a model of size N fine-tuned on ``D_F`` target tokens to loss ``L_ft``, the effective data
transferred ``D_T`` is the extra target data a same-size model trained from scratch would need to
reach ``L_ft``: ``D_T = D_E - D_F`` with ``L_scratch(D_E; N) = L_ft``. The from-scratch curve of
each size is a saturating power law ``L = E + B D^-beta`` fitted to that size's from-scratch runs,
inverted as ``D_E = (B / (L_ft - E))^(1/beta)``. Then ``D_T = k D_F^alpha N^beta`` is fitted by least
squares in log space, and the fraction of effective data from transfer is ``D_T / (D_F + D_T)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import DataError
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
    return np.quantile(d_t, q, axis=0), np.quantile(d_t, 1 - q, axis=0)


def fit_transfer(
    scratch_data: Any,
    finetune_data: Any,
    *,
    n: str = "N",
    d: str = "D",
    loss: str = "loss",
    d_f: str | None = None,
    loss_ft: str | None = None,
    source: str = "data",
) -> TransferResult:
    """From from-scratch runs (N, D, loss) and fine-tuned runs (N, D_F, loss), fit the transfer law.

    Runs whose ``D_T`` is not positive and finite (fine-tuning no better than scratch, or better than
    the scratch asymptote) are reported but left out of the fit.
    """
    d_f = d_f or d
    loss_ft = loss_ft or loss
    Ns = column(scratch_data, n, source=f"{source} (from scratch)")
    Ds = column(scratch_data, d, source=f"{source} (from scratch)")
    Ls = column(scratch_data, loss, source=f"{source} (from scratch)")
    check_values({n: Ns, d: Ds, loss: Ls}, positive=[n, d, loss], source=f"{source} (from scratch)")
    Nf = column(finetune_data, n, source=f"{source} (fine-tuned)")
    Df = column(finetune_data, d_f, source=f"{source} (fine-tuned)")
    Lf = column(finetune_data, loss_ft, source=f"{source} (fine-tuned)")
    check_values({n: Nf, d_f: Df, loss_ft: Lf}, positive=[n, d_f, loss_ft], source=f"{source} (fine-tuned)")
    scratch: dict[str, FitResult] = {}
    warn: list[str] = []
    d_e = np.full(len(Nf), np.nan)
    d_lo, d_hi = np.full(len(Nf), np.nan), np.full(len(Nf), np.nan)
    for size in np.unique(Nf):
        m = Ns == size
        if m.sum() < 4:
            raise DataError(f"{source}: model size {size:g} has {int(m.sum())} from-scratch runs; "
                            "its L(D) curve needs at least 4")
        r = fit(PowerLaw(), {"x": Ds[m], "y": Ls[m]}, target="y", source=f"{source} (scratch N={size:g})")
        scratch[f"{size:g}"] = r
        mf = Nf == size
        d_e[mf] = effective_data_transferred(r, Lf[mf], Df[mf]) + Df[mf]
        d_lo[mf], d_hi[mf] = _d_t_interval(r, Lf[mf], Df[mf])
        if r.warnings:
            warn += [f"scratch fit N={size:g}: {w}" for w in r.warnings]
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
        law = fit(Transfer(), {"D_F": Df[used], "N": Nf[used], "D_T": d_t[used]}, target="D_T",
                  loss_fn="lsq", fixed=fixed, source=source)
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
