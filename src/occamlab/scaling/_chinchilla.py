"""Chinchilla in one call: Approach 3, the compute-optimal allocation and an extrapolation check
(what ``occam fit chinchilla`` does), returned as one result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.scaling._allocation import (
    Allocation,
    allocation_from_params,
    default_budgets,
    optimal_allocation,
    tokens_from_flops,
)
from occamlab.scaling._calibrate import CalibratedExtrapolation, calibrate_extrapolation
from occamlab.scaling._extrapolate import ExtrapolationResult, extrapolation_check
from occamlab.scaling._fit import fit
from occamlab.scaling._form_names import get_form
from occamlab.scaling._forms import Chinchilla
from occamlab.scaling._result import FitResult, Prediction

__all__ = ["ChinchillaReport", "fit_chinchilla"]


@dataclass(frozen=True)
class ChinchillaReport(Rendered):
    """An Approach 3 fit, the allocation it implies, and (optionally) how well it extrapolates."""

    fit: FitResult
    allocation: Allocation
    extrapolation: ExtrapolationResult | None = None
    calibration: CalibratedExtrapolation | None = None
    # the calibrated interval of the loss at each compute of ``extrapolate_to``, at the
    # Chinchilla fit's compute-optimal (N_opt, D_opt)
    extrapolated: Prediction | None = None

    @property
    def valid(self) -> bool:
        """The fit and the allocation are valid (and the refits of the extrapolation check)."""
        ex = self.extrapolation is None or self.extrapolation.valid
        return self.fit.valid and self.allocation.valid and ex

    def _tables(self) -> list[Table]:
        ex = self.extrapolation._tables() if self.extrapolation is not None else []
        cal = self.calibration._tables() if self.calibration is not None else []
        out = [*self.fit._tables(), *self.allocation._tables(), *ex, *cal]
        p, c = self.extrapolated, self.calibration
        if p is not None and c is not None:
            pct = f"{100 * p.level:g}%"
            comp = [6.0 * n * d for n, d in zip(p.inputs["N"], p.inputs["D"], strict=True)]
            rows = [[cc, n, d, float(c.distance(cc)), v, lo, hi] for cc, n, d, v, lo, hi in
                    zip(comp, p.inputs["N"], p.inputs["D"], p.value, p.lower, p.upper, strict=True)]
            out.append(Table(f"Calibrated extrapolation of the loss ({c.form})",
                             ["C (FLOPs)", "N_opt", "D_opt", "distance (dec)", "loss",
                              f"{pct} lower", f"{pct} upper"], rows,
                             [f"interval: {p.method}", "N_opt, D_opt: the Chinchilla fit's "
                              "compute-optimal allocation"]))
        return out


def fit_chinchilla(
    data: Any,
    *,
    n: str = "N",
    d: str | None = None,
    flops: str | None = None,
    loss: str = "loss",
    loss_fn: str = "huber",
    delta: float = 1e-3,
    bootstrap: int = 0,
    groups: str | None = None,
    budgets: Sequence[float] | None = None,
    holdout: int = 0,
    extrapolate_to: Sequence[float] | None = None,
    forms: Sequence[str] = ("kaplan-irreducible", "coupled-chinchilla"),
    seed: int = 0,
    source: str = "data",
) -> ChinchillaReport:
    """Fit ``L(N, D) = E + A/N^alpha + B/D^beta`` and derive the compute-optimal allocation.

    Parameters
    ----------
    data : pandas.DataFrame or mapping of arrays
    n, d, flops, loss : str
        Columns: model size ``N``, training tokens ``D`` (or, without ``d``, training compute
        ``C`` with ``D = C / (6 N)``), and the loss in nats.
    loss_fn, delta, bootstrap, groups, seed :
        As for :func:`fit` (robust loss, Huber delta, bootstrap resamples and their groups).
    budgets : sequence of float, optional
        Compute budgets of the allocation; default :func:`default_budgets` of the fit.
    holdout : int
        With ``K > 0``, also refit without the ``K`` largest model sizes and predict them
        (:func:`extrapolation_check`), with intervals calibrated by backtests on the rest.
    extrapolate_to : sequence of float, optional
        Training computes ``C`` (FLOPs): calibrate the extrapolation intervals by backtests
        along training compute ``C = 6 N D`` (:func:`calibrate_extrapolation`) and predict the
        loss at the fit's compute-optimal ``(N_opt(C), D_opt(C))`` with its calibrated interval.
    forms : sequence of str
        Other candidate forms of the calibration (names in :data:`FORMS` with inputs ``N, D``);
        the one of least backtest error gives the calibrated prediction, the others its spread.

    Returns
    -------
    ChinchillaReport
    """
    import pandas as pd

    if d is None and flops is None:
        raise ConfigError("give the tokens column d, or the training compute column flops "
                          "(D = C / (6 N))")
    df = pd.DataFrame(data).copy()
    if d is None:
        d = "__D"
        df[d] = tokens_from_flops(df, n=n, flops=str(flops), source=source)
    columns = {"N": n, "D": d}
    res = fit(Chinchilla(), df, target=loss, columns=columns, source=source, loss_fn=loss_fn,
              delta=delta, bootstrap=bootstrap, seed=seed, groups=groups)
    chosen = default_budgets(res) if budgets is None else budgets
    alloc = optimal_allocation(res, chosen, seed=seed)
    ex = None
    if holdout:
        ex = _holdout(df, n, holdout, loss, columns, loss_fn, delta)
    if not extrapolate_to:
        return ChinchillaReport(res, alloc, ex)
    cal, pred = _extrapolate(res, df, columns, loss, extrapolate_to, forms, loss_fn, delta, seed)
    return ChinchillaReport(res, alloc, ex, cal, pred)


def _holdout(df: Any, n: str, holdout: int, loss: str, columns: dict[str, str], loss_fn: str,
             delta: float) -> ExtrapolationResult:
    """The extrapolation check, calibrated when the training runs have scales enough to backtest
    (otherwise with the old intervals only: ``calibration`` is None)."""
    kw: dict[str, Any] = dict(by=n, n_holdout=holdout, target=loss, columns=columns,
                              loss_fn=loss_fn, delta=delta)
    try:
        return extrapolation_check(Chinchilla(), df, calibrate=True, **kw)
    except ConfigError as exc:
        if "too few scales to backtest" not in str(exc):
            raise
        return extrapolation_check(Chinchilla(), df, **kw)


def _extrapolate(res: FitResult, df: Any, columns: dict[str, str], loss: str,
                 computes: Sequence[float], forms: Sequence[str], loss_fn: str, delta: float,
                 seed: int) -> tuple[CalibratedExtrapolation, Prediction]:
    """Calibrate along training compute; predict at the compute-optimal allocation of ``res``."""
    C = np.asarray(computes, float)
    if C.ndim != 1 or np.any(~np.isfinite(C)) or np.any(C <= 0):
        raise ConfigError(f"extrapolate_to must be positive finite computes (FLOPs), got {computes!r}")
    alt = [get_form(f) for f in forms]
    bad = [f.name for f in alt if tuple(f.inputs) != ("N", "D")]
    if bad:
        raise ConfigError(f"forms must be laws of (N, D) such as kaplan-irreducible or "
                          f"coupled-chinchilla; got {bad}")
    work = df.copy()
    work["__C"] = 6.0 * work[columns["N"]].astype(float) * work[columns["D"]].astype(float)
    cal = calibrate_extrapolation(Chinchilla(), work, by="__C", forms=alt, target=loss,
                                  columns=columns, loss_fn=loss_fn, delta=delta, seed=seed)
    p = res.params
    opt = allocation_from_params(p["E"], p["A"], p["B"], p["alpha"], p["beta"], C)
    return cal, cal.predict(scale=C, N=opt["n_opt"], D=opt["d_opt"])
