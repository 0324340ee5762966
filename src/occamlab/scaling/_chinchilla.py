"""Chinchilla in one call: Approach 3, the compute-optimal allocation and an extrapolation check
(what ``occam fit chinchilla`` does), returned as one result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.scaling._allocation import (
    Allocation,
    default_budgets,
    optimal_allocation,
    tokens_from_flops,
)
from occamlab.scaling._extrapolate import ExtrapolationResult, extrapolation_check
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import Chinchilla
from occamlab.scaling._result import FitResult

__all__ = ["ChinchillaReport", "fit_chinchilla"]


@dataclass(frozen=True)
class ChinchillaReport(Rendered):
    """An Approach 3 fit, the allocation it implies, and (optionally) how well it extrapolates."""

    fit: FitResult
    allocation: Allocation
    extrapolation: ExtrapolationResult | None = None

    @property
    def valid(self) -> bool:
        """The fit and the allocation are valid (and the refits of the extrapolation check)."""
        ex = self.extrapolation is None or self.extrapolation.valid
        return self.fit.valid and self.allocation.valid and ex

    def _tables(self) -> list[Table]:
        ex = self.extrapolation._tables() if self.extrapolation is not None else []
        return [*self.fit._tables(), *self.allocation._tables(), *ex]


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
        (:func:`extrapolation_check`).

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
        ex = extrapolation_check(Chinchilla(), df, by=n, n_holdout=holdout, target=loss,
                                 columns=columns, loss_fn=loss_fn, delta=delta)
    return ChinchillaReport(res, alloc, ex)
