"""Minimal generators: the least state entropy over k-state presentations of a process.

For a target process and a number of states ``k`` we search edge-emitting (possibly
non-unifilar) presentations ``G`` with ``k`` states for

    min H[pi_G]   subject to   Pr_G(w) = Pr(w) for every word w of length L.

Word length: two presentations with ``n1`` and ``n2`` states generate the same stationary
process iff their word probabilities agree up to length ``n1 + n2 - 1`` (the joint
(n1+n2)-dimensional linear representation spans its reachable space within that many steps;
Paz 1971, Ito, Amari & Kobayashi 1992). Words of length ``L`` determine all shorter ones by
marginalizing, so matching length ``L = n1 + n2`` (one to spare) suffices. The search is a
penalty method (``H + mu ||Pr_G - Pr||^2`` with growing ``mu``) by L-BFGS-B over row-normalized
non-negative entries, from several seeded starts (plus any given warm starts), followed by a
feasibility polish; the best feasible generator is kept and its word error reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.processes._presentation import Presentation, entropy_bits, stationary_of

__all__ = ["GeneratorResult", "minimal_generator"]


@dataclass(frozen=True)
class GeneratorResult(Rendered):
    """Best k-state generator found (bits). ``converged`` is False when no start was
    feasible (no generator of the process within ``word_tol`` was found)."""

    process: str
    params: dict[str, Any]
    states: int
    generative_complexity: float | None
    statistical_complexity: float
    excess_entropy: float | None
    matrices: list[list[list[float]]] | None
    stationary: list[float] | None
    max_word_error: float | None
    word_length: int
    word_tol: float
    n_starts: int
    n_feasible: int
    converged: bool
    seed: int

    @property
    def beats_prediction(self) -> bool:
        return bool(self.converged and self.generative_complexity is not None
                    and self.generative_complexity < self.statistical_complexity - 1e-9)

    def presentation(self) -> Presentation:
        if self.matrices is None:
            raise ConfigError("no feasible generator was found")
        return Presentation(self.matrices, name=f"{self.process} {self.states}-state generator")

    def _tables(self) -> list[Table]:
        rows = [[self.states, self.generative_complexity, self.statistical_complexity,
                 self.excess_entropy, self.max_word_error, self.word_length]]
        notes = [f"{self.n_feasible} of {self.n_starts} starts feasible (max word error <= "
                 f"{self.word_tol:g} over all words of length {self.word_length})"]
        if self.converged:
            notes.append("beats the predictive model (C_g < C_mu)" if self.beats_prediction
                         else "does not beat the predictive model")
        tables = [Table(f"Minimal {self.states}-state generator of {self.process}",
                        ["states", "H[pi] (C_g)", "C_mu", "E", "max word error", "L"], rows,
                        notes)]
        if self.matrices is not None and self.stationary is not None:
            T = np.asarray(self.matrices)
            mrows = [[f"T[{x}]", i, *[round(v, 6) for v in T[x, i]], round(self.stationary[i], 6)]
                     for x in range(T.shape[0]) for i in range(T.shape[1])]
            tables.append(Table("Generator matrices T[x][i, j]",
                                ["symbol", "from", *[f"to {j}" for j in range(T.shape[1])], "pi_i"],
                                mrows))
        return tables


def _words_of(T: np.ndarray, pi: np.ndarray, L: int) -> np.ndarray:
    v = pi[None, :]
    for _ in range(L):
        v = np.einsum("wi,xij->wxj", v, T).reshape(-1, T.shape[1])
    return v.sum(axis=1)


_FD_STEP = 1e-7  # forward-difference step of the penalty objective's gradient
_FD_CENTRAL = 1e-6  # central-difference step of the word-residual Jacobian


def _unpack_batch(Z: np.ndarray, A: int, k: int) -> np.ndarray:
    rows = Z.reshape(Z.shape[0], k, A * k) + 1e-300
    rows = rows / rows.sum(axis=2, keepdims=True)
    return rows.reshape(Z.shape[0], k, A, k).transpose(0, 2, 1, 3)  # (B, A, k, k)


def _stationary_batch(P: np.ndarray) -> np.ndarray:
    """Stationary laws of a batch of stochastic matrices (B, k, k), regularized to be unique."""
    k = P.shape[1]
    P = (1 - 1e-12) * P + 1e-12 / k
    M = np.swapaxes(P, 1, 2) - np.eye(k)
    M[:, -1, :] = 1.0
    b = np.zeros((P.shape[0], k, 1))
    b[:, -1, 0] = 1.0
    pi = np.linalg.solve(M, b)[..., 0]
    return np.clip(pi, 0.0, None)


def _words_batch(T: np.ndarray, pi: np.ndarray, L: int) -> np.ndarray:
    v = pi[:, None, :]  # (B, W, k)
    for _ in range(L):
        v = np.einsum("bwi,bxij->bwxj", v, T).reshape(T.shape[0], -1, T.shape[2])
    return v.sum(axis=2)


def _unpack(z: np.ndarray, A: int, k: int) -> np.ndarray:
    rows = z.reshape(k, A * k) + 1e-300
    rows = rows / rows.sum(axis=1, keepdims=True)
    return rows.reshape(k, A, k).transpose(1, 0, 2)  # (A, k, k)


def minimal_generator(
    presentation: Presentation,
    states: int,
    *,
    word_length: int | None = None,
    n_starts: int = 12,
    seed: int = 0,
    word_tol: float = 1e-6,
    warm_starts: Sequence[np.ndarray] = (),
    statistical_complexity: float | None = None,
    excess_entropy: float | None = None,
    target_states: int | None = None,
) -> GeneratorResult:
    """Search ``states``-state presentations of the same process for the least ``H[pi]``.

    Parameters
    ----------
    presentation : Presentation
        The target process (any presentation of it).
    states : int
        Number of states ``k`` of the generator (>= 1).
    word_length : int, optional
        Length of the words matched; default ``target_states + states`` (see module docs).
    n_starts : int
        Random starts (Dirichlet rows), seeded by ``seed``.
    word_tol : float
        A generator is accepted when every word of ``word_length`` matches to this.
    warm_starts : sequence of arrays (A, k, k)
        Extra starting points (e.g. a known generator, or the optimum at a nearby parameter).
    statistical_complexity, excess_entropy : float, optional
        ``C_mu`` and ``E`` of the target for the report (computed when omitted).
    target_states : int, optional
        States of the target's minimal linear dimension bound (default: the presentation's).
    """
    if states < 1:
        raise ConfigError(f"states must be >= 1, got {states}")
    if n_starts < 0:
        raise ConfigError(f"n_starts must be >= 0, got {n_starts}")
    if statistical_complexity is None or excess_entropy is None:
        from occamlab.processes._info import analyze

        info = analyze(presentation)
        statistical_complexity = info.statistical_complexity or float("nan")
        excess_entropy = info.excess_entropy
    n1 = presentation.n_states if target_states is None else target_states
    L = int(word_length) if word_length is not None else n1 + states
    A, k = presentation.n_symbols, states
    if A ** L > 200_000:
        raise ConfigError(f"{A}^{L} words is too many; choose a smaller word_length")
    search = _Search(A, k, L, presentation.word_probabilities(L).ravel())
    gen = np.random.default_rng(check_seed(seed))
    starts = [np.asarray(w, float).transpose(1, 0, 2).reshape(-1) for w in warm_starts]
    starts += [gen.dirichlet(np.full(A * k, 0.7), size=k).ravel() for _ in range(n_starts)]
    best: tuple[float, np.ndarray, float] | None = None
    n_feasible = 0
    for z0 in starts:
        feasible, found = search.from_start(z0, word_tol)
        n_feasible += feasible
        for cand in found:
            if best is None or cand[0] < best[0]:
                best = cand
    common: dict[str, Any] = {"process": presentation.name, "params": dict(presentation.params),
              "states": k,
              "statistical_complexity": float(statistical_complexity),
              "excess_entropy": excess_entropy, "word_length": L, "word_tol": word_tol,
              "n_starts": len(starts), "seed": seed}
    if best is None:
        return GeneratorResult(generative_complexity=None, matrices=None, stationary=None,
                               max_word_error=None, n_feasible=0, converged=False, **common)
    T = np.where(best[1] < 1e-12, 0.0, best[1])
    T = T / T.sum(axis=(0, 2))[None, :, None]
    pi = stationary_of(T.sum(axis=0))
    return GeneratorResult(
        generative_complexity=float(entropy_bits(pi)), matrices=T.tolist(), stationary=pi.tolist(),
        max_word_error=float(np.abs(_words_of(T, pi, L) - search.target).max()),
        n_feasible=n_feasible, converged=True, **common)


class _Search:
    """The penalty search for a ``k``-state generator matching the target's words of length
    ``L`` (see the module docstring): objective, residuals, finite-difference derivatives."""

    def __init__(self, A: int, k: int, L: int, target: np.ndarray) -> None:
        self.A, self.k, self.L, self.target = A, k, L, target
        self.scale = 1.0 / max(np.abs(target).max(), 1e-12)
        self.D = k * A * k
        self.steps = np.eye(self.D) * _FD_STEP
        self.steps_c = np.eye(self.D) * _FD_CENTRAL
        self.bounds = [(0.0, 1.0)] * self.D

    def batch(self, Z: np.ndarray, mu: float) -> np.ndarray:
        """Objective for a batch of parameter vectors Z, shape (B, D) -> (B,)."""
        T = _unpack_batch(Z, self.A, self.k)  # (B, A, k, k)
        pi = _stationary_batch(T.sum(axis=1))  # (B, k)
        d = (_words_batch(T, pi, self.L) - self.target) * self.scale  # (B, A^L)
        H = entropy_bits(pi, axis=1) if mu >= 0 else 0.0
        return H * (mu >= 0) + abs(mu) * np.einsum("bw,bw->b", d, d)

    def residuals(self, Z: np.ndarray) -> np.ndarray:
        T = _unpack_batch(Z, self.A, self.k)
        return (_words_batch(T, _stationary_batch(T.sum(axis=1)), self.L) - self.target) * self.scale

    def jac(self, z: np.ndarray) -> np.ndarray:
        # Central differences, all 2D perturbations in one batched call: (A^L, D).
        r = self.residuals(np.vstack([z[None, :] + self.steps_c, z[None, :] - self.steps_c]))
        return ((r[:self.D] - r[self.D:]) / (2 * _FD_CENTRAL)).T

    def polish(self, z: np.ndarray) -> np.ndarray:
        """Gauss-Newton (trust-region reflective) on the word residuals, inside [0, 1]."""
        return least_squares(lambda v: self.residuals(v[None, :])[0], np.clip(z, 0, 1),
                             jac=self.jac, bounds=(0.0, 1.0), method="trf", xtol=1e-15,
                             ftol=1e-15, gtol=1e-15, max_nfev=200).x

    def fun_grad(self, z: np.ndarray, mu: float) -> tuple[float, np.ndarray]:
        # Forward differences, all D perturbations evaluated in one batched call.
        f = self.batch(np.vstack([z[None, :], z[None, :] + self.steps]), mu)
        return float(f[0]), (f[1:] - f[0]) / _FD_STEP

    def from_start(self, z0: np.ndarray, word_tol: float
                   ) -> tuple[bool, list[tuple[float, np.ndarray, float]]]:
        """Penalty continuation from ``z0``, then a feasibility polish from where it stopped and
        from ``z0`` itself (which keeps a feasible warm start feasible). Returns whether a
        feasible generator was found and each feasible one as ``(H, T, max word error)``."""
        z = np.clip(z0, 0, 1)
        for mu in (1e1, 1e3, 1e5):
            z = minimize(self.fun_grad, z, args=(mu,), jac=True, method="L-BFGS-B",
                         bounds=self.bounds, options={"maxiter": 400}).x
        found = []
        for cand in (self.polish(z), self.polish(z0)):
            T = _unpack(cand, self.A, self.k)
            if not _irreducible(T):
                continue
            pi = stationary_of(T.sum(axis=0))
            e = float(np.abs(_words_of(T, pi, self.L) - self.target).max())
            if e <= word_tol:
                found.append((float(entropy_bits(pi)), T, e))
        return bool(found), found


def _irreducible(T: np.ndarray) -> bool:
    from scipy.sparse.csgraph import connected_components

    P = T.sum(axis=0)
    pi = stationary_of(P)
    keep = pi > 1e-12
    # States with no stationary weight are dropped; the rest must be one recurrent class.
    n, _ = connected_components(P[np.ix_(keep, keep)] > 1e-12, directed=True,
                                connection="strong")
    return bool(n == 1)
