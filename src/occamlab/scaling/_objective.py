"""The fitting objective: a robust (Huber) or least-squares loss on residuals in a form's space.

``f(theta) = sum_i w_i rho(r_i) / sum_i w_i`` with ``r_i = g(prediction_i) - g(observed_i)`` (``g = ln``
for log-space forms) and Hoffmann et al.'s Huber loss ``rho(r) = r^2/2`` for ``|r| <= delta``,
``delta (|r| - delta/2)`` beyond. Weights ``w`` are per problem: a bootstrap resample of points is
the same data with integer multiplicities, so every start and every resample is one row of a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from occamlab.scaling._forms import LawForm

__all__ = ["Objective", "huber", "LOSS_FNS"]

LOSS_FNS = ("huber", "lsq")  # the robust loss functions rho: Huber or least squares
Array = np.ndarray


def huber(r: Array, delta: float) -> tuple[Array, Array]:
    """Huber loss and its derivative (psi) elementwise."""
    a = np.abs(r)
    rho = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return rho, np.clip(r, -delta, delta)


@dataclass(frozen=True)
class Objective:
    """Batched objective over one data set; ``weights`` is (1, n) or (S, n)."""

    form: LawForm
    prep: Mapping[str, Array]
    z: Array  # observed values in residual space, (n,)
    weights: Array
    loss_fn: str = "huber"  # one of LOSS_FNS
    delta: float = 1e-3

    def _rho_psi(self, r: Array) -> tuple[Array, Array]:
        if self.loss_fn == "huber":
            return huber(r, self.delta)
        return 0.5 * r * r, r

    def _coef(self, rows: Array, k: int) -> Array:
        w = self.weights if self.weights.shape[0] == 1 else self.weights[rows]
        return np.broadcast_to(w / w.sum(axis=1, keepdims=True), (k, w.shape[1]))

    def values(self, theta: Array, rows: Array) -> Array:
        """Objective (k,) for internal parameters ``theta`` (k, P) of problems ``rows``."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rho, _ = self._rho_psi(self.form.value(theta, self.prep) - self.z)
            f = (rho * self._coef(rows, len(theta))).sum(axis=1)
        return np.where(np.isfinite(f), f, np.inf)

    def gauss_newton(self, theta: Array, rows: Array) -> tuple[Array, Array, Array]:
        """Objective (k,), gradient (k, P) and the IRLS Gauss-Newton matrix (k, P, P).

        The matrix is ``J^T diag(c * psi(r)/r) J``: the curvature of the quadratic that majorizes
        the Huber loss at the current residuals (weight 1 inside delta, ``delta/|r|`` beyond).
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            val, J = self.form.value_jac(theta, self.prep)  # (k, n), (k, P, n)
            r = val - self.z
            rho, psi = self._rho_psi(r)
            c = self._coef(rows, len(theta))
            f = (rho * c).sum(axis=1)
            g = np.einsum("kpn,kn->kp", J, psi * c)
            if self.loss_fn == "huber":
                om = np.where(np.abs(r) <= self.delta, 1.0, self.delta / np.maximum(np.abs(r), 1e-300))
            else:
                om = np.ones_like(r)
            G = np.matmul(J * (om * c)[:, None, :], J.transpose(0, 2, 1))
        bad = ~np.isfinite(f) | ~np.all(np.isfinite(g), axis=1) | ~np.all(np.isfinite(G), axis=(1, 2))
        f = np.where(bad, np.inf, f)
        g[bad] = 0.0
        G[bad] = 0.0
        return f, g, G

    def value_grad(self, theta: Array) -> tuple[float, Array]:
        """Objective and gradient at one parameter vector (P,)."""
        f, g, _ = self.gauss_newton(np.asarray(theta, float)[None, :], np.zeros(1, int))
        return float(f[0]), g[0]

    def residuals(self, theta: Array) -> Array:
        """Residuals (n,) at one internal parameter vector (P,)."""
        return self.form.value(np.asarray(theta, float)[None, :], self.prep)[0] - self.z

    def value(self, theta: Array) -> float:
        """Unweighted mean loss at one parameter vector (the reported ``objective``)."""
        rho, _ = self._rho_psi(self.residuals(theta))
        return float(rho.mean())
