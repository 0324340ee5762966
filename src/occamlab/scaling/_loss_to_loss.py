"""Loss-to-loss prediction (Brandfonbrener et al. 2024).

Models are paired by (N, D). Each loss (x: one train set evaluated on one eval set; y: another) is
first fitted with a Chinchilla ``L(N, D)`` (Huber, delta 1e-3, log space) to get its irreducible
term ``E``; then ``y = K (x - E_x)^kappa + E_y`` is fitted by least squares of ``ln(y - E_y)`` on
``ln(x - E_x)``. Reported kappa: about 0.88-1.13 train-to-train, 0.74-1.05 test-to-test, 0.36-1.08
train-to-test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import DataError, check_seed
from occamlab.scaling._data import check_values, column
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import Chinchilla, LossToLoss
from occamlab.scaling._result import FitResult, Prediction

__all__ = ["LossToLossResult", "fit_loss_to_loss"]


@dataclass(frozen=True)
class LossToLossResult(Rendered):
    """The two ``L(N, D)`` fits that give ``E_x`` and ``E_y``, and the fitted ``K, kappa``."""

    x_name: str
    y_name: str
    fit_x: FitResult
    fit_y: FitResult
    law: FitResult

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings of the three fits: ``fit_x``, ``fit_y``, then ``law``."""
        return (*self.fit_x.warnings, *self.fit_y.warnings, *self.law.warnings)

    @property
    def valid(self) -> bool:
        """All three fits (``fit_x``, ``fit_y`` and ``law``) are valid."""
        return self.fit_x.valid and self.fit_y.valid and self.law.valid

    @property
    def kappa(self) -> float:
        return self.law.params["kappa"]

    def predict(self, x: Any, *, level: float | None = None) -> Prediction:
        """Predict loss y from loss x, with the law's interval (``E`` terms held at their fits)."""
        return self.law.predict(x=x, level=level, form=LossToLoss(E_x=self.fit_x.params["E"],
                                                                  E_y=self.fit_y.params["E"]))

    def _tables(self) -> list[Table]:
        rows = [[f"E_x ({self.x_name})", self.fit_x.params["E"], *self.fit_x.ci["E"]],
                [f"E_y ({self.y_name})", self.fit_y.params["E"], *self.fit_y.ci["E"]]]
        rows += [[k, self.law.params[k], *self.law.ci[k]] for k in ("K", "kappa")]
        pct = f"{100 * self.law.level:g}%"
        return [Table(f"Loss-to-loss: {self.y_name} = K ({self.x_name} - E_x)^kappa + E_y",
                      ["param", "value", f"{pct} lower", f"{pct} upper"], rows,
                      [f"{self.law.n_points} paired models; E from Chinchilla fits of each loss",
                       f"intervals: {self.law.interval_method}"] +
                      [f"warning: {w}" for w in self.warnings])]


def fit_loss_to_loss(
    data: Any,
    *,
    x: str,
    y: str,
    n: str = "N",
    d: str = "D",
    starts: Sequence[Sequence[float]] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    source: str = "data",
) -> LossToLossResult:
    """Fit ``y = K (x - E_x)^kappa + E_y`` on rows of paired models (columns n, d, x, y).

    Each loss is first fitted with a Chinchilla law (Huber, delta 1e-3) for its irreducible term
    ``E``; then ``ln(y - E_y) = ln K + kappa ln(x - E_x)`` by least squares (``loss_fn="lsq"``).

    Parameters
    ----------
    data : pandas.DataFrame or mapping of arrays
    x, y : str
        Columns of the two losses (nats), one row per model.
    n, d : str
        Columns of model sizes ``N`` and training tokens ``D``.
    starts : optional
        Starts of the two Chinchilla fits (default: Hoffmann et al.'s grid).
    bootstrap : int
        Bootstrap resamples of the ``K, kappa`` fit (0: Hessian intervals).
    seed : int
        Seed of that bootstrap (non-negative integer).
    source : str
        Name of the data in error messages.
    """
    seed = check_seed(seed)
    N, D = column(data, n, source=source), column(data, d, source=source)
    X, Y = column(data, x, source=source), column(data, y, source=source)
    check_values({n: N, d: D, x: X, y: Y}, positive=[n, d, x, y], source=source, min_rows=6)
    fx = fit(Chinchilla(), {"N": N, "D": D, "loss": X}, starts=starts, source=f"{source} ({x})")
    fy = fit(Chinchilla(), {"N": N, "D": D, "loss": Y}, starts=starts, source=f"{source} ({y})")
    Ex, Ey = fx.params["E"], fy.params["E"]
    if not (np.all(X > Ex) and np.all(Y > Ey)):
        raise DataError(f"{source}: some losses are below their fitted irreducible loss "
                        f"(E_x = {Ex:.4g}, E_y = {Ey:.4g}); the loss-to-loss law is undefined there")
    law = fit(LossToLoss(E_x=Ex, E_y=Ey), {"x": X, "y": Y}, target="y", loss_fn="lsq",
              bootstrap=bootstrap, seed=seed, source=source)
    return LossToLossResult(x_name=x, y_name=y, fit_x=fx, fit_y=fy, law=law)
