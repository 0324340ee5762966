"""A third ``L(N, D)`` form for form uncertainty: Chinchilla with a data term that depends on size.

Hoffmann et al.'s law adds a model-size term and a data term that do not interact; Kaplan et al.'s
couples them through one bracket. ``CoupledChinchilla`` keeps Chinchilla's three terms and lets the
data coefficient scale with model size, ``B(N) = B N^gamma``:

    L(N, D) = E + A / N^alpha + B N^gamma / D^beta,

fitted as ``ln L = LSE(a - alpha ln N, b + gamma ln N - beta ln D, e)``. ``gamma = 0`` is
Chinchilla; ``gamma < 0`` says larger models need fewer tokens for the same data term (they are
more sample-efficient, as Kaplan et al. 2020 and Hoffmann et al. 2022 both observe), so the
compute-optimal token ratio drifts with scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab.scaling._forms import Chinchilla, LawForm, Param

__all__ = ["CoupledChinchilla"]

Array = np.ndarray


@dataclass(frozen=True)
class CoupledChinchilla(LawForm):
    """``L(N, D) = E + A / N^alpha + B N^gamma / D^beta``: Chinchilla whose data term depends on
    model size (``gamma = 0`` is Chinchilla).

    Internal parameters ``(ln E, ln A, ln B, alpha, beta, gamma)``; the default starts are
    Hoffmann et al.'s grid at ``gamma = 0`` (the fitter moves ``gamma`` from there).
    """

    name = "coupled-chinchilla"
    formula = "L = E + A / N^alpha + B N^gamma / D^beta"
    inputs = ("N", "D")
    space = "log"

    @property
    def params(self) -> tuple[Param, ...]:
        return (*Chinchilla().params,
                Param("gamma", -2.0, 2.0, description="size dependence of the data term"))

    def prepare(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        return {"lnN": np.log(np.asarray(inputs["N"], float)), "lnD": np.log(np.asarray(inputs["D"], float))}

    def _terms(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array, Array]:
        """``ln L`` (S, n) and the softmax weights of the size and data terms (each (S, n))."""
        e, a, b, al, be, ga = (theta[:, i : i + 1] for i in range(6))
        lnN = prep["lnN"]
        u1 = a - al * lnN
        u2 = b + ga * lnN - be * prep["lnD"]
        m = np.maximum(np.maximum(u1, u2), e)
        e1 = np.exp(np.maximum(u1 - m, -60.0))  # clipped: subnormal exponentials are slow
        e2 = np.exp(np.maximum(u2 - m, -60.0))
        e3 = np.exp(np.maximum(e - m, -60.0))
        tot = e1 + e2 + e3
        return m + np.log(tot), e1 / tot, e2 / tot

    def value(self, theta: Array, prep: Mapping[str, Array]) -> Array:
        return self._terms(theta, prep)[0]

    def value_jac(self, theta: Array, prep: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w1, w2 = self._terms(theta, prep)
        lnN = prep["lnN"]
        jac = np.stack([1.0 - w1 - w2, w1, w2, -w1 * lnN, -w2 * prep["lnD"], w2 * lnN], axis=1)
        return val, jac

    def _grid_axes(self, inputs: Mapping[str, Array], y: Array) -> list[Any]:
        return [*Chinchilla()._grid_axes(inputs, y), [0.0]]

