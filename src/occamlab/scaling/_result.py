"""``FitResult``: an immutable record of a fitted law, its uncertainty and its diagnostics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.scaling._form_names import get_form
from occamlab.scaling._forms import LawForm

__all__ = ["FitResult", "Prediction"]


def _floats(xs: Any) -> tuple[float, ...]:
    return tuple(float("nan") if v is None else float(v) for v in xs)


@dataclass(frozen=True)
class Prediction(Rendered):
    """Predicted values with an interval; ``method`` says how the interval was made."""

    inputs: Mapping[str, tuple[float, ...]]
    value: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    level: float
    method: str

    def _tables(self) -> list[Table]:
        names = list(self.inputs)
        rows = [
            [*(self.inputs[k][i] for k in names), self.value[i], self.lower[i], self.upper[i]]
            for i in range(len(self.value))
        ]
        pct = f"{100 * self.level:g}%"
        return [Table("Prediction", [*names, "value", f"{pct} lower", f"{pct} upper"], rows,
                      [f"interval: {self.method}"])]


@dataclass(frozen=True)
class FitResult(Rendered):
    """A fitted scaling law.

    ``params``, ``stderr`` and ``ci`` are in natural units (``E``, ``A``, ...); ``theta``,
    ``covariance`` and ``bootstrap`` are in the fitter's internal coordinates (logarithms of
    positive scale parameters), which is where intervals are made. ``stderr`` is the spread that
    goes with the interval: the Hessian (M-estimator) standard error, or with a bootstrap the
    robust SD of the draws (IQR / 1.349). ``objective`` is the mean loss (Huber or least squares)
    of the residuals at the optimum, unscaled; ``loss_fn`` the robust loss the fit used. Status:
    ``converged``, ``at_bound``, ``warnings`` and the property ``valid`` (all diagnostics passed).
    """

    form: str
    formula: str
    param_names: tuple[str, ...]
    params: Mapping[str, float]
    stderr: Mapping[str, float]
    ci: Mapping[str, tuple[float, float]]
    level: float
    interval_method: str
    objective: float
    loss_fn: str  # the robust loss of the fit: "huber" or "lsq"
    delta: float
    space: str
    n_points: int
    n_starts: int
    n_starts_at_best: int
    converged: bool
    at_bound: tuple[str, ...]
    fixed: tuple[str, ...]
    warnings: tuple[str, ...]
    inputs: Mapping[str, tuple[float, ...]]
    observed: tuple[float, ...]
    residuals: tuple[float, ...]
    theta: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...] | None
    bootstrap: tuple[tuple[float, ...], ...] | None
    form_options: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)

    # --- status -----------------------------------------------------------------------------
    @property
    def valid(self) -> bool:
        """The fit passed all its own diagnostics: ``converged`` (the optimizer's own stopping
        criterion was met), no parameter at a bound, and no ``warnings`` (no distinct near-optimum,
        a regular covariance, no failed bootstrap resample)."""
        return bool(self.converged and not self.at_bound and not self.warnings)

    # --- use --------------------------------------------------------------------------------
    def law(self) -> LawForm:
        """The form object (built-in forms only; custom forms are not stored)."""
        try:
            return get_form(self.form, **dict(self.form_options))
        except ConfigError as exc:
            raise ConfigError(
                f"form {self.form!r} is not built in; call predict(..., form=YourForm) instead"
            ) from exc

    def noise_scale(self) -> float:
        """Robust scale of the residuals (1.4826 x median absolute deviation), in residual space."""
        r = np.asarray(self.residuals)
        return float(1.4826 * np.median(np.abs(r - np.median(r))))

    def predict(self, *, level: float | None = None, form: LawForm | None = None,
                kind: str = "law", **inputs: Any) -> Prediction:  # inputs: arrays named after the form's inputs
        """Predict at new inputs with an interval.

        ``kind="law"``: an interval for the fitted law itself (parameter uncertainty). With bootstrap
        draws it is the percentile interval of the predictions over the draws; otherwise the delta
        method on the internal covariance, in the form's residual space (so intervals of a log-space
        law are symmetric in log), then mapped back.
        ``kind="observation"``: an interval for a new measurement, adding the residual noise
        (:meth:`noise_scale`, Gaussian in residual space) to the law's uncertainty.
        """
        if kind not in ("law", "observation"):
            raise ConfigError(f"kind must be 'law' or 'observation', got {kind!r}")
        law = form or self.law()
        level = self.level if level is None else float(level)
        arrays = {k: np.atleast_1d(np.asarray(inputs[k], float)) for k in law.inputs if k in inputs}
        missing = [k for k in law.inputs if k not in arrays]
        if missing:
            raise ConfigError(f"predict needs inputs {list(law.inputs)}; missing {missing}")
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        flat = {k: np.broadcast_to(a, shape).ravel() for k, a in arrays.items()}
        prep = law.prepare(flat)
        theta = np.array(self.theta)[None, :]
        z = law.value(theta, prep)[0]
        if self.bootstrap:
            zb = law.value(np.array(self.bootstrap), prep)
            q = (1 - level) / 2
            lo, hi = np.nanquantile(zb, q, axis=0), np.nanquantile(zb, 1 - q, axis=0)
            method = f"bootstrap percentile over {len(self.bootstrap)} refits"
        elif self.covariance is not None:
            J = law.jacobian(theta, prep)[0]
            cov = np.array(self.covariance)
            sd = np.sqrt(np.maximum(np.einsum("np,pq,nq->n", J, cov, J), 0.0))
            zq = stats.norm.ppf(0.5 + level / 2)
            lo, hi = z - zq * sd, z + zq * sd
            method = f"delta method on the Hessian covariance, in {law.space} space"
        else:
            lo = hi = np.full_like(z, np.nan)
            method = "none (no covariance: the fit is singular)"
        if kind == "observation":
            zq = stats.norm.ppf(0.5 + level / 2)
            half = (np.asarray(hi) - np.asarray(lo)) / 2  # the law's half-width
            total = np.sqrt(half**2 + (zq * self.noise_scale()) ** 2)
            lo, hi = z - total, z + total
            method += f"; plus residual noise (robust scale {self.noise_scale():.3g} in {law.space} space)"
        return Prediction(
            inputs={k: tuple(map(float, v)) for k, v in flat.items()},
            value=tuple(map(float, law.untransform(z))),
            lower=tuple(map(float, law.untransform(lo))),
            upper=tuple(map(float, law.untransform(hi))),
            level=level,
            method=method,
        )

    def plot(self, path: str | None = None, **kwargs: Any) -> Any:
        """Data, fitted curves and residuals; see :func:`occamlab.scaling.plot_fit`."""
        from occamlab.scaling._plot import plot_fit

        return plot_fit(self, path=path, **kwargs)

    # --- rendering --------------------------------------------------------------------------
    def _tables(self) -> list[Table]:
        pct = f"{100 * self.level:g}%"
        rows = []
        for name in self.param_names:
            lo, hi = self.ci.get(name, (math.nan, math.nan))
            flag = "fixed" if name in self.fixed else ("at bound" if name in self.at_bound else "")
            rows.append([name, self.params[name], self.stderr.get(name, math.nan), lo, hi, flag])
        notes = [
            f"{self.n_points} points, loss {self.loss_fn}"
            + (f" (delta {self.delta:g})" if self.loss_fn == "huber" else "")
            + f" on {self.space} residuals; objective {self.objective:.6g}",
            f"{self.n_starts} starts, {self.n_starts_at_best} reached the best objective; "
            f"converged: {'yes' if self.converged else 'NO'}",
            f"intervals: {self.interval_method}",
        ]
        notes += [f"warning: {w}" for w in self.warnings]
        spread = ("robust SD (bootstrap)" if self.interval_method.startswith("bootstrap")
                  else "stderr (Hessian)")
        heads = ["param", "value", spread, f"{pct} lower", f"{pct} upper", "status"]
        if not any(r[-1] for r in rows):  # no parameter fixed or at a bound: no empty column
            heads, rows = heads[:-1], [r[:-1] for r in rows]
        out = [Table(f"Fit: {self.formula}", heads, rows, notes)]
        alloc = self.config.get("optimal_allocation")
        if alloc:
            out.append(Table("Compute-optimal allocation (C = 6 N D)",
                             ["quantity", "value"], [[k, v] for k, v in alloc.items()
                                                     if not isinstance(v, dict | list)]))
        return out

    def residual_table(self) -> Table:
        names = list(self.inputs)
        rows = [[*(self.inputs[k][i] for k in names), self.observed[i], self.residuals[i]]
                for i in range(self.n_points)]
        return Table("Residuals", [*names, "observed", f"residual ({self.space})"], rows)

    # --- serialization ----------------------------------------------------------------------
