"""Models whose learning coefficient is known, as exact population losses ``K(w)`` for the
volume law (:func:`measure_volume`), each with the torch model of the same family for the LLC
estimator.

Every ``K`` is the population loss of a Gaussian regression with whitened inputs
(``E[x x^T] = I``) minus its minimum, exactly: ``K(w) = ||f_w - f_{w0}||^2 / 2`` over the input
distribution, which for the linear models below is a Frobenius norm. The prior is uniform on
``[-a, a]^d`` with the true set inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from occamlab.errors import ConfigError, suggest
from occamlab.slt._known import (
    LearningCoefficient,
    normal_crossing_lambda,
    regular_lambda,
    rrr_lambda,
)
from occamlab.slt._models import (
    KnownModel,
    make_linear_regression,
    make_normal_crossing,
    make_rrr,
)

__all__ = ["VolumeCase", "VOLUME_CASES", "volume_case"]


@dataclass(frozen=True)
class VolumeCase:
    """A known-lambda model: ``K`` on ``d`` parameters, the prior box, the truth, the torch
    model of the same family (``build(seed)``, for the LLC estimator), and what ``K`` is."""

    name: str
    n_params: int
    halfwidth: float
    k: Callable[[np.ndarray], float]
    truth: LearningCoefficient
    build: Callable[[int], KnownModel]
    formula: str


def _regular(d_in: int, d_out: int) -> VolumeCase:
    w0 = np.linspace(-0.5, 0.5, d_in * d_out)  # inside the box, fixed

    def k(w: np.ndarray) -> float:
        return 0.5 * float(np.dot(w - w0, w - w0))

    return VolumeCase(f"regular/linreg-{d_in}x{d_out}", d_in * d_out, 1.0, k,
                      regular_lambda(d_in * d_out),
                      lambda s: make_linear_regression(d_in, d_out, n=10_000, seed=s),
                      "||W - W0||^2 / 2")


def _crossing(ks: tuple[int, ...]) -> VolumeCase:
    powers = 2 * np.asarray(ks, dtype=float)

    def k(w: np.ndarray) -> float:
        return 0.5 * float(np.prod(np.abs(w) ** powers))

    label = " ".join(f"w{i + 1}" + (f"^{v}" if v > 1 else "") for i, v in enumerate(ks))
    return VolumeCase(f"normal_crossing/{label}", len(ks), 1.0, k, normal_crossing_lambda(ks),
                      lambda s: make_normal_crossing(list(ks), n=100_000, seed=s),
                      f"({label})^2 / 2")


def _rrr(m: int, h: int, n: int, r: int) -> VolumeCase:
    p0 = np.zeros((n, m))
    p0[:r, :r] = np.eye(r)  # rank r, unit singular values (as make_rrr's truth)

    def k(w: np.ndarray) -> float:
        a = w[: h * m].reshape(h, m)
        b = w[h * m:].reshape(n, h)
        diff = b @ a - p0
        return 0.5 * float(np.sum(diff * diff))

    return VolumeCase(f"rrr/{m}-{h}-{n}-r{r}", h * (m + n), 1.5, k, rrr_lambda(m, h, n, r),
                      lambda s: make_rrr(m, h, n, r, n=10_000, seed=s), "||B A - B0 A0||^2 / 2")


VOLUME_CASES: dict[str, VolumeCase] = {c.name: c for c in (
    _regular(2, 1),
    _crossing((1, 2)),
    _crossing((1, 1)),
    _rrr(2, 1, 2, 1),
    _rrr(2, 2, 2, 1),
)}


def volume_case(name: str) -> VolumeCase:
    """The case called ``name`` (:data:`VOLUME_CASES`)."""
    if name not in VOLUME_CASES:
        raise ConfigError(f"unknown volume-law case {name!r}{suggest(name, VOLUME_CASES)}; "
                          f"known: {', '.join(VOLUME_CASES)}")
    return VOLUME_CASES[name]
