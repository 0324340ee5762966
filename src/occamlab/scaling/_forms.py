"""Scaling-law forms: small typed objects with parameter names, bounds and a vectorized ``predict``.

A form maps inputs (``N``, ``D``, ``x``, ...) and parameters to a prediction. The fitter works in an
*internal* parameterization (``ln A`` instead of ``A`` for positive scale parameters, as Hoffmann et al.
do) and in a *residual space*: ``log`` forms compare ``ln(prediction)`` with ``ln(observed)``, ``linear``
forms compare the values themselves. Every form evaluates many parameter vectors at once: internal
parameters have shape ``(S, P)`` (S starts or bootstrap resamples) and predictions ``(S, n)``.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab.errors import ConfigError

__all__ = [
    "Param",
    "LawForm",
    "Chinchilla",
    "Kaplan",
    "PowerLaw",
    "Transfer",
    "LossToLoss",
    "SaturatingExp",
    "Sigmoid",
    "CustomForm",
]

Array = np.ndarray


@dataclass(frozen=True)
class Param:
    """One parameter of a law.

    ``log=True`` means the fitter works with ``ln(value)`` (the value must be positive); ``lower`` and
    ``upper`` are bounds on the value itself (not its logarithm).
    """

    name: str
    lower: float = -math.inf
    upper: float = math.inf
    log: bool = False
    description: str = ""

    def internal_bounds(self) -> tuple[float, float]:
        if self.log:
            lo = math.log(self.lower) if self.lower > 0 else -math.inf
            hi = math.log(self.upper) if math.isfinite(self.upper) else math.inf
            return lo, hi
        return self.lower, self.upper


def _lse_grad(u: Array) -> tuple[Array, Array]:
    """Log-sum-exp over the last axis of ``u`` (..., K), and its softmax weights.

    K is small (2 or 3 terms): elementwise maxima and sums over the K slices are several times
    faster than numpy reductions along a short last axis.
    """
    K = u.shape[-1]
    m = u[..., 0]
    for k in range(1, K):
        m = np.maximum(m, u[..., k])
    # terms below e^-60 of the largest change nothing in double precision; clipping avoids
    # subnormal exponentials, which are very slow
    ex = np.exp(np.maximum(u - m[..., None], -60.0))
    tot = ex[..., 0].copy()
    for k in range(1, K):
        tot += ex[..., k]
    return m + np.log(tot), ex / tot[..., None]


class LawForm(abc.ABC):
    """Base class of every law. Subclasses define the parameters, inputs and the evaluation."""

    name: str = ""
    formula: str = ""
    inputs: tuple[str, ...] = ()
    space: str = "log"  # residual space: "log", "linear" (or "log-excess" for loss-to-loss)
    positive_inputs: bool = True  # inputs enter through logarithms and must be > 0

    @property
    @abc.abstractmethod
    def params(self) -> tuple[Param, ...]:
        """The parameters in their fixed order."""

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    # --- internal coordinates -------------------------------------------------------------
    def to_internal(self, values: Mapping[str, float]) -> Array:
        """Natural parameter values -> internal vector (P,)."""
        missing = [n for n in self.param_names if n not in values]
        if missing:
            raise ConfigError(f"{self.name}: missing parameter(s) {missing}; needs {list(self.param_names)}")
        out = []
        for p in self.params:
            v = float(values[p.name])
            if p.log:
                if v <= 0:
                    raise ConfigError(f"{self.name}: parameter {p.name} must be > 0, got {v}")
                v = math.log(v)
            out.append(v)
        return np.array(out)

    def to_natural(self, theta: Array) -> Array:
        """Internal parameters (..., P) -> natural values (..., P)."""
        theta = np.asarray(theta, dtype=float)
        logmask = np.array([p.log for p in self.params])
        with np.errstate(over="ignore"):  # an interval end beyond 1e308 is inf, not an error
            return np.where(logmask, np.exp(np.where(logmask, theta, 0.0)), theta)

    def internal_bounds(self) -> tuple[Array, Array]:
        b = [p.internal_bounds() for p in self.params]
        return np.array([x[0] for x in b]), np.array([x[1] for x in b])

    # --- evaluation -----------------------------------------------------------------------
    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """Precompute what evaluation needs from the inputs (logs, say); called once per fit."""
        return {k: np.asarray(v, dtype=float) for k, v in inputs.items()}

    def transform(self, y: Array) -> Array:
        """Observed values -> residual space."""
        return np.log(y) if self.space == "log" else np.asarray(y, dtype=float)

    def untransform(self, z: Array) -> Array:
        return np.exp(z) if self.space == "log" else z

    @abc.abstractmethod
    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        """Prediction in residual space for internal parameters ``theta`` (S, P): shape (S, n)."""

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        """Prediction (S, n) and its Jacobian d value / d theta, shape (S, P, n).

        The default differentiates numerically (central differences); built-in forms override it.
        """
        theta = np.atleast_2d(np.asarray(theta, float))
        cols = []
        for j in range(theta.shape[1]):
            h = 1e-6 * np.maximum(1.0, np.abs(theta[:, j]))
            tp, tm = theta.copy(), theta.copy()
            tp[:, j] += h
            tm[:, j] -= h
            cols.append((self.value(tp, prep) - self.value(tm, prep)) / (2 * h[:, None]))
        return self.value(theta, prep), np.stack(cols, axis=1)

    def jacobian(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        """d value / d theta, shape (S, n, P)."""
        return self.value_jac(np.atleast_2d(theta), prep)[1].transpose(0, 2, 1)

    def default_starts(self, inputs: Mapping[str, Array], y: Array) -> Array:
        """A grid of internal starting points (S, P); data-driven for some forms."""
        return np.array(list(itertools.product(*self._grid_axes(inputs, y))), dtype=float)

    @abc.abstractmethod
    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        """One sequence of internal values per parameter; their product is the default grid."""

    # --- user-facing ----------------------------------------------------------------------
    def predict(self, params: Mapping[str, float], **inputs: Any) -> Array:
        """Evaluate the law at natural parameter values, vectorized over the inputs."""
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise ConfigError(f"{self.name}.predict needs inputs {list(self.inputs)}; missing {missing}")
        arrays = {k: np.atleast_1d(np.asarray(inputs[k], dtype=float)) for k in self.inputs}
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        flat = {k: np.broadcast_to(a, shape).ravel() for k, a in arrays.items()}
        theta = self.to_internal(params)[None, :]
        z = self.value(theta, self.prepare(flat))[0]
        return self.untransform(z).reshape(shape)

    def describe(self) -> str:
        return f"{self.name}: {self.formula}"


# --------------------------------------------------------------------------------------------
# Loss as a function of parameters and data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chinchilla(LawForm):
    """Hoffmann et al. (2022) Approach 3: ``L(N, D) = E + A / N^alpha + B / D^beta``.

    Fitted as ``ln L = LSE(a - alpha ln N, b - beta ln D, e)`` with ``A = e^a, B = e^b, E = e^e``.
    """

    name = "chinchilla"
    formula = "L = E + A / N^alpha + B / D^beta"
    inputs = ("N", "D")
    space = "log"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("E", 0.0, math.inf, log=True, description="irreducible loss"),
            Param("A", 0.0, math.inf, log=True, description="model-size coefficient"),
            Param("B", 0.0, math.inf, log=True, description="data coefficient"),
            Param("alpha", 0.0, 10.0, description="model-size exponent"),
            Param("beta", 0.0, 10.0, description="data exponent"),
        )

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnN": np.log(np.asarray(inputs["N"], float)), "lnD": np.log(np.asarray(inputs["D"], float))}

    def _lse(self, theta: Array, prep: Mapping[str, Array], weights: bool) -> tuple[Array, Array | None]:
        """``ln L`` (S, n) and, if asked, the softmax weights of the three terms (3, S, n).

        Written with 2-D arrays (no (S, n, 3) intermediate): this is the fitter's hot path.
        """
        e, a, b, al, be = (theta[:, i : i + 1] for i in range(5))
        u1 = a - al * prep["lnN"]
        u2 = b - be * prep["lnD"]
        m = np.maximum(np.maximum(u1, u2), e)
        # terms below e^-60 of the largest change nothing in double precision; clipping avoids
        # subnormal exponentials, which are very slow
        e1 = np.exp(np.maximum(u1 - m, -60.0))
        e2 = np.exp(np.maximum(u2 - m, -60.0))
        e3 = np.exp(np.maximum(e - m, -60.0))
        tot = e1 + e2 + e3
        val = m + np.log(tot)
        if not weights:
            return val, None
        inv = 1.0 / tot
        return val, np.stack([e1 * inv, e2 * inv, e3 * inv])

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return self._lse(theta, prep, False)[0]

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w = self._lse(theta, prep, True)
        assert w is not None
        w1, w2, w3 = w
        jac = np.stack([w3, w1, w2, -w1 * prep["lnN"], -w2 * prep["lnD"]], axis=1)
        return val, jac

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        # Hoffmann et al.'s grid, in internal order (e, a, b, alpha, beta): 5 * 6 * 6 * 5 * 5 = 4,500.
        return [
            np.arange(-1.0, 1.01, 0.5),
            np.arange(0.0, 25.1, 5.0),
            np.arange(0.0, 25.1, 5.0),
            np.arange(0.0, 2.01, 0.5),
            np.arange(0.0, 2.01, 0.5),
        ]


@dataclass(frozen=True)
class Kaplan(LawForm):
    """Kaplan et al. (2020): ``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``.

    ``irreducible=True`` adds an irreducible loss, ``L = E + [...]^alpha_D`` (name
    ``kaplan-irreducible``), fitted as ``ln L = LSE(e, alpha_D LSE((alpha_N/alpha_D)(ln N_c - ln N),
    ln D_c - ln D))``: Kaplan's data term depends on model size through the bracket, which is what
    makes it a different extrapolation from Chinchilla's sum of separate terms.
    """

    irreducible: bool = False
    inputs = ("N", "D")
    space = "log"

    @property
    def name(self) -> str:  # type: ignore[override]
        return "kaplan-irreducible" if self.irreducible else "kaplan"

    @property
    def formula(self) -> str:  # type: ignore[override]
        bracket = "[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
        return f"L = E + {bracket}" if self.irreducible else f"L = {bracket}"

    @property
    def params(self) -> tuple[Param, ...]:
        ps = (
            Param("N_c", 0.0, math.inf, log=True, description="critical model size"),
            Param("D_c", 0.0, math.inf, log=True, description="critical data size"),
            Param("alpha_N", 1e-4, 10.0, description="model-size exponent"),
            Param("alpha_D", 1e-4, 10.0, description="data exponent"),
        )
        if self.irreducible:
            return (Param("E", 0.0, math.inf, log=True, description="irreducible loss"), *ps)
        return ps

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnN": np.log(np.asarray(inputs["N"], float)), "lnD": np.log(np.asarray(inputs["D"], float))}

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        k = 1 if self.irreducible else 0
        lnc, lnd, an, ad = (theta[:, k + i : k + i + 1] for i in range(4))
        u = np.stack([(an / ad) * (lnc - prep["lnN"]), lnd - prep["lnD"]], axis=-1)
        val = ad * _lse_grad(u)[0]
        if not self.irreducible:
            return val
        return _lse_grad(np.stack([np.broadcast_to(theta[:, 0:1], val.shape), val], axis=-1))[0]

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        if not self.irreducible:
            return [[20.0, 25.0, 30.0, 35.0], [20.0, 25.0, 30.0, 35.0], [0.05, 0.1, 0.3], [0.05, 0.1, 0.3]]
        ly = float(np.log(np.min(y)))
        return [[ly - 2.0, ly - 1.0, ly - 0.3], [10.0, 15.0, 20.0, 25.0, 30.0],
                [10.0, 15.0, 20.0, 25.0, 30.0], [0.1, 0.3, 0.6], [0.1, 0.3, 0.6]]


@dataclass(frozen=True)
class PowerLaw(LawForm):
    """Saturating power law ``y = E + A x^-alpha`` (``saturating=False``: ``y = A x^-alpha``)."""

    saturating: bool = True
    inputs = ("x",)
    space = "log"

    @property
    def name(self) -> str:  # type: ignore[override]
        return "power-law" if self.saturating else "pure-power-law"

    @property
    def formula(self) -> str:  # type: ignore[override]
        return "y = E + A x^-alpha" if self.saturating else "y = A x^-alpha"

    @property
    def params(self) -> tuple[Param, ...]:
        ps = (
            Param("A", 0.0, math.inf, log=True, description="scale"),
            Param("alpha", -10.0, 10.0, description="exponent"),
        )
        if self.saturating:
            return (Param("E", 0.0, math.inf, log=True, description="asymptote"), *ps)
        return ps

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnx": np.log(np.asarray(inputs["x"], float))}

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return self.value_jac(theta, prep)[0]

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        lnx = prep["lnx"]
        ones = np.ones((len(theta), len(lnx)))
        if not self.saturating:
            val = theta[:, 0:1] - theta[:, 1:2] * lnx
            return val, np.stack([ones, -lnx * ones], axis=1)
        u = np.stack([theta[:, 1:2] - theta[:, 2:3] * lnx, theta[:, 0:1] * ones], axis=-1)
        val, w = _lse_grad(u)
        return val, np.stack([w[..., 1], w[..., 0], -w[..., 0] * lnx], axis=1)

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        ly = float(np.log(np.median(y)))
        axes: list[Any] = [np.arange(0.0, 25.1, 2.5), np.arange(-0.5, 2.01, 0.25)]
        if self.saturating:
            axes.insert(0, [ly - 3.0, ly - 1.0, ly - 0.3, ly])
        return axes


@dataclass(frozen=True)
class Transfer(LawForm):
    """Hernandez et al. (2021) effective data transferred: ``D_T = k D_F^alpha N^beta``."""

    name = "transfer"
    formula = "D_T = k D_F^alpha N^beta"
    inputs = ("D_F", "N")
    space = "log"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("k", 0.0, math.inf, log=True, description="scale"),
            Param("alpha", -5.0, 5.0, description="fine-tuning-data exponent"),
            Param("beta", -5.0, 5.0, description="model-size exponent"),
        )

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnF": np.log(np.asarray(inputs["D_F"], float)), "lnN": np.log(np.asarray(inputs["N"], float))}

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return theta[:, 0:1] + theta[:, 1:2] * prep["lnF"] + theta[:, 2:3] * prep["lnN"]

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        ones = np.ones((len(theta), len(prep["lnF"])))
        return self.value(theta, prep), np.stack([ones, prep["lnF"] * ones, prep["lnN"] * ones], axis=1)

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        return [np.arange(-5.0, 20.1, 5.0), [0.0, 0.25, 0.5, 1.0], [0.0, 0.25, 0.5, 1.0]]


@dataclass(frozen=True)
class LossToLoss(LawForm):
    """Brandfonbrener et al. (2024): ``y = K (x - E_x)^kappa + E_y`` with ``E_x, E_y`` given.

    The irreducible losses come from per-(train set, eval set) ``L(N, D)`` fits; ``K`` and ``kappa``
    are then fitted by least squares of ``ln(y - E_y)`` on ``ln(x - E_x)``, as in the paper.
    """

    E_x: float = 0.0
    E_y: float = 0.0
    name = "loss-to-loss"
    formula = "y = K (x - E_x)^kappa + E_y"
    inputs = ("x",)
    space = "log-excess"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("K", 0.0, math.inf, log=True, description="scale"),
            Param("kappa", 0.0, 10.0, description="exponent"),
        )

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        x = np.asarray(inputs["x"], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"lnx": np.log(x - self.E_x)}

    def transform(self, y: Array) -> Array:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(np.asarray(y, float) - self.E_y)

    def untransform(self, z: Array) -> Array:
        return np.exp(z) + self.E_y

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return theta[:, 0:1] + theta[:, 1:2] * prep["lnx"]

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        ones = np.ones((len(theta), len(prep["lnx"])))
        return self.value(theta, prep), np.stack([ones, prep["lnx"] * ones], axis=1)

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        return [[-2.0, 0.0, 2.0], [0.25, 0.5, 1.0, 1.5, 2.0]]


# --------------------------------------------------------------------------------------------
# Downstream metrics (linear residuals)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaturatingExp(LawForm):
    """Downstream form of Gadre et al. (2024), used by Lourie et al. (2025): ``y = eps - k exp(-gamma x)``.

    With ``x`` the validation loss and ``y`` a task error, ``eps`` is the error at chance.
    """

    name = "saturating-exp"
    formula = "y = eps - k exp(-gamma x)"
    inputs = ("x",)
    space = "linear"
    positive_inputs = False

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("eps", description="asymptote as gamma x grows"),
            Param("k", 0.0, math.inf, log=True, description="scale"),
            Param("gamma", -50.0, 50.0, description="rate"),
        )

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return theta[:, 0:1] - np.exp(np.minimum(theta[:, 1:2] - theta[:, 2:3] * prep["x"], 700.0))

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        x = prep["x"]
        t = np.exp(np.minimum(theta[:, 1:2] - theta[:, 2:3] * x, 700.0))
        return theta[:, 0:1] - t, np.stack([np.ones_like(t), -t, t * x], axis=1)

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        x = np.asarray(inputs["x"], float)
        lo, hi = float(np.min(y)), float(np.max(y))
        span = max(float(np.ptp(x)), 1e-12)
        rates = [r / span for r in (-4.0, -1.0, 0.5, 1.0, 2.0, 4.0)]
        eps = [lo, hi, hi + 0.5 * (hi - lo)]
        # k so that the curve spans the data at the median x for each rate
        lk = [math.log(max(hi - lo, 1e-6)) + g * float(np.median(x)) for g in rates]
        return [eps, sorted(set(np.round(lk, 6))), rates]


@dataclass(frozen=True)
class Sigmoid(LawForm):
    """A sigmoid in log-compute (breakthrough / emergent tasks):
    ``y = lo + (hi - lo) / (1 + exp(-s (ln x - c)))``."""

    name = "sigmoid"
    formula = "y = lo + (hi - lo) / (1 + exp(-s (ln x - c)))"
    inputs = ("x",)
    space = "linear"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("lo", description="floor"),
            Param("hi", description="ceiling"),
            Param("s", -100.0, 100.0, description="steepness per e-fold of x"),
            Param("c", description="midpoint, ln x"),
        )

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnx": np.log(np.asarray(inputs["x"], float))}

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        lo, hi, s, c = (theta[:, i : i + 1] for i in range(4))
        z = np.clip(-s * (prep["lnx"] - c), -700, 700)
        return lo + (hi - lo) / (1.0 + np.exp(z))

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        lnx = np.log(np.asarray(inputs["x"], float))
        lo, hi = float(np.min(y)), float(np.max(y))
        span = max(float(np.ptp(lnx)), 1e-12)
        return [
            [lo, lo - 0.1 * (hi - lo)],
            [hi, hi + 0.5 * (hi - lo)],
            [-8.0 / span, 2.0 / span, 8.0 / span, 32.0 / span],
            list(np.quantile(lnx, [0.2, 0.5, 0.8])),
        ]


# --------------------------------------------------------------------------------------------
# User forms
# --------------------------------------------------------------------------------------------
class CustomForm(LawForm):
    """A law from a Python callable and a parameter spec.

    ``fn(params, **inputs)`` receives ``params`` as a dict of arrays of shape (S, 1) (natural values)
    and each input as an array of shape (n,), and returns predictions of shape (S, n) (numpy
    broadcasting does this for ordinary formulas). Predictions must be positive when ``space="log"``.

    >>> form = CustomForm("linear", lambda p, x: p["a"] + p["b"] * x, (Param("a"), Param("b")),
    ...                   inputs=("x",), space="linear", starts=[[0.0, 1.0]])
    >>> float(form.predict({"a": 1.0, "b": 2.0}, x=3.0)[0])
    7.0
    """

    formula = "user-defined"

    def __init__(
        self,
        name: str,
        fn: Callable[..., Array],
        params: Sequence[Param],
        *,
        inputs: Sequence[str] = ("x",),
        space: str = "log",
        starts: Sequence[Sequence[float]] | None = None,
    ) -> None:
        if space not in ("log", "linear"):
            raise ConfigError(f"space must be 'log' or 'linear', got {space!r}")
        if not params:
            raise ConfigError("a custom form needs at least one Param")
        self.positive_inputs = False
        self.custom_name = name
        self.fn = fn
        self.custom_params = tuple(params)
        self.custom_inputs = tuple(inputs)
        self.custom_space = space
        self.starts = None if starts is None else [list(s) for s in starts]

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.custom_name

    @property
    def inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.custom_inputs

    @property
    def space(self) -> str:  # type: ignore[override]
        return self.custom_space

    @property
    def params(self) -> tuple[Param, ...]:
        return self.custom_params

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        nat = self.to_natural(theta)
        p = {name: nat[:, i : i + 1] for i, name in enumerate(self.param_names)}
        n = len(next(iter(prep.values())))
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(np.asarray(self.fn(p, **prep), dtype=float), (len(theta), n))
            return self.transform(pred)

    def default_starts(self, inputs: Mapping[str, Array], y: Array) -> Array:
        if self.starts is not None:
            s = np.array([self.to_internal(dict(zip(self.param_names, r, strict=True))) for r in self.starts])
            return s
        return super().default_starts(inputs, y)

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        axes: list[Any] = []
        for p in self.params:
            if p.log:
                axes.append([-2.0, 0.0, 2.0, 5.0])
            else:
                lo = p.lower if math.isfinite(p.lower) else -2.0
                hi = p.upper if math.isfinite(p.upper) else 2.0
                axes.append(list(np.linspace(lo, hi, 4)))
        return axes
