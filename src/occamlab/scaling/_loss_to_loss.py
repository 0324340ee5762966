"""Loss-to-loss prediction (Brandfonbrener et al. 2024).

Models are paired by (N, D). Each loss (x: one train set evaluated on one eval set; y: another) is
first fitted with a Chinchilla ``L(N, D)`` (Huber, delta 1e-3, log space) to get its irreducible
term ``E``; then ``y = K (x - E_x)^kappa + E_y`` is fitted by least squares of ``ln(y - E_y)`` on
``ln(x - E_x)``. Reported kappa: about 0.88-1.13 train-to-train, 0.74-1.05 test-to-test, 0.36-1.08
train-to-test.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, OccamError, check_seed
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
    # with ``joint > 0``: (E_x, E_y, K, kappa) of each resample of models, all four refitted
    joint_draws: tuple[tuple[float, ...], ...] | None = None

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

    def predict(self, x: Any, *, level: float | None = None, kind: str = "law") -> Prediction:
        """Predict loss y from loss x with an interval.

        Without joint draws: the law's interval with ``E_x`` and ``E_y`` held at their fits
        (``kind="observation"`` adds the scatter of models around the law). With joint draws
        (``fit_loss_to_loss(..., joint=B)``): the percentile interval of
        ``y_b = K_b (x - E_x,b)^kappa_b + E_y,b`` over the resamples of models, every stage
        refitted; ``kind="observation"`` adds the residual scatter ``s`` of ``ln(y - E_y)``
        (delta method: ``sd_y = (y_hat - E_y) s``).
        """
        form = LossToLoss(E_x=self.fit_x.params["E"], E_y=self.fit_y.params["E"])
        if not self.joint_draws:
            return self.law.predict(x=x, level=level, form=form, kind=kind)
        if kind not in ("law", "observation"):
            raise ConfigError(f"kind must be 'law' or 'observation', got {kind!r}")
        level = self.law.level if level is None else float(level)
        xs = np.atleast_1d(np.asarray(x, float))
        d = np.array(self.joint_draws)  # (B, 4): E_x, E_y, K, kappa
        with np.errstate(invalid="ignore"):
            yb = d[:, 2:3] * (xs[None, :] - d[:, 0:1]) ** d[:, 3:4] + d[:, 1:2]  # (B, n)
        q = (1 - level) / 2
        lo, hi = np.nanquantile(yb, q, axis=0), np.nanquantile(yb, 1 - q, axis=0)
        v = form.predict(dict(self.law.params), x=xs)
        method = (f"joint bootstrap over {len(d)} resamples of models (E_x, E_y, K, kappa "
                  "refitted together), percentile")
        if kind == "observation":
            z = stats.norm.ppf(0.5 + level / 2)
            sd = (v - self.fit_y.params["E"]) * self.law.noise_scale()
            lo, hi = v - np.sqrt((v - lo) ** 2 + (z * sd) ** 2), v + np.sqrt((hi - v) ** 2 + (z * sd) ** 2)
            method += f"; plus the scatter of models (robust scale {self.law.noise_scale():.3g} of ln(y - E_y))"
        return Prediction(inputs={"x": tuple(map(float, xs))}, value=tuple(map(float, v)),
                          lower=tuple(map(float, lo)), upper=tuple(map(float, hi)), level=level,
                          method=method)

    def _tables(self) -> list[Table]:
        rows = [[f"E_x ({self.x_name})", self.fit_x.params["E"], *self.fit_x.ci["E"]],
                [f"E_y ({self.y_name})", self.fit_y.params["E"], *self.fit_y.ci["E"]]]
        rows += [[k, self.law.params[k], *self.law.ci[k]] for k in ("K", "kappa")]
        pct = f"{100 * self.law.level:g}%"
        return [Table(f"Loss-to-loss: {self.y_name} = K ({self.x_name} - E_x)^kappa + E_y",
                      ["param", "value", f"{pct} lower", f"{pct} upper"], rows,
                      [f"{self.law.n_points} paired models; E from Chinchilla fits of each loss",
                       f"intervals: {self.law.interval_method}"] +
                      ([f"predictions: joint bootstrap over {len(self.joint_draws)} resamples of "
                        "models (E_x, E_y, K, kappa refitted together)"] if self.joint_draws else []) +
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
    joint: int = 0,
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
    joint : int
        Resamples of models (rows, with replacement) for a joint bootstrap: each refits both
        Chinchilla laws (from the full-data optima) and ``K, kappa``, so ``E_x``, ``E_y``, ``K``
        and ``kappa`` vary together; :meth:`LossToLossResult.predict` then uses these draws
        (0: ``E`` held at the fits, the default). A resample whose refit fails, or whose losses
        fall below its ``E``, is left out.
    seed : int
        Seed of the bootstraps (non-negative integer).
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
    if isinstance(joint, bool) or not isinstance(joint, int) or joint < 0:
        raise ConfigError(f"joint must be a non-negative integer, got {joint!r}")
    draws = _joint_draws((N, D, X, Y), (fx, fy, law), joint, seed) if joint else None
    return LossToLossResult(x_name=x, y_name=y, fit_x=fx, fit_y=fy, law=law, joint_draws=draws)


def _joint_draws(cols: tuple[np.ndarray, ...], fits: tuple[FitResult, ...], n_draws: int,
                 seed: int) -> tuple[tuple[float, ...], ...]:
    """(E_x, E_y, K, kappa) refitted on ``n_draws`` resamples of the models (rows)."""
    N, D, X, Y = cols
    fx, fy, law = fits
    rng = np.random.default_rng(seed)
    out = []
    with warnings.catch_warnings():  # a resample's diagnostics are not the user's fit's
        warnings.simplefilter("ignore")
        for _ in range(n_draws):
            i = rng.integers(0, len(N), len(N))
            try:
                ex = fit(Chinchilla(), {"N": N[i], "D": D[i], "loss": X[i]}, starts=[list(fx.theta)])
                ey = fit(Chinchilla(), {"N": N[i], "D": D[i], "loss": Y[i]}, starts=[list(fy.theta)])
                Ex, Ey = ex.params["E"], ey.params["E"]
                if not (np.all(X[i] > Ex) and np.all(Y[i] > Ey)):
                    continue
                kk = fit(LossToLoss(E_x=Ex, E_y=Ey), {"x": X[i], "y": Y[i]}, target="y",
                         loss_fn="lsq", starts=[list(law.theta)])
            except OccamError:
                continue
            out.append((Ex, Ey, kk.params["K"], kk.params["kappa"]))
    if len(out) < max(2, n_draws // 2):
        raise DataError(f"joint bootstrap: only {len(out)} of {n_draws} resamples could be "
                        "refitted; the loss-to-loss law is not stable under resampling here")
    return tuple(tuple(map(float, r)) for r in out)
