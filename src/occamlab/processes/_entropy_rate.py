"""Entropy rate of a non-unifilar presentation: Blackwell estimate with finite-L bounds.

For any presentation with states ``S`` (Blackwell 1957; REFERENCE.md):

    H[X_L | X_{0:L}, S_0]  <=  h_mu  <=  H[X_L | X_{0:L}]

both sides monotone in L and converging to ``h_mu``. The upper bound is the mixed-state average
``sum_eta p_L(eta) H[X | eta]`` from ``pi``; the lower bound averages the same quantity over mixed
states started at each ``delta_s`` weighted by ``pi_s``. The estimate is the ergodic average of
``H[X | eta_t]`` along long sampled belief paths (Blackwell's measure), with a standard error from
the spread of independent chains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.processes._mixed_state import mixed_state_graph
from occamlab.processes._presentation import Presentation, entropy_bits
from occamlab.processes._sampling import sample

__all__ = ["EntropyRateEstimate", "estimate_entropy_rate", "entropy_rate_bounds"]


@dataclass(frozen=True)
class EntropyRateEstimate(Rendered):
    """Entropy rate ``h_mu`` (bits per symbol): estimate, standard error and exact bounds.

    ``lower``/``upper`` are rigorous bounds at block length ``length``; ``estimate`` is the
    ergodic belief-path average over ``n_chains`` chains of ``n_steps`` steps (after burn-in).
    """

    estimate: float
    stderr: float
    lower: float
    upper: float
    length: int
    n_chains: int
    n_steps: int
    seed: int

    def _tables(self) -> list[Table]:
        return [Table(
            "Entropy rate h_mu (bits/symbol)",
            ["estimate", "stderr", "lower bound", "upper bound", "L"],
            [[self.estimate, self.stderr, self.lower, self.upper, self.length]],
            [f"Blackwell ergodic average over {self.n_chains} chains x {self.n_steps} steps"],
        )]


def entropy_rate_bounds(
    presentation: Presentation, *, length: int = 12, max_states: int = 200_000,
    tol: float = 1e-12,
) -> tuple[float, float, int]:
    """``(lower, upper, L)`` with ``H[X_L|X_{0:L},S_0] <= h_mu <= H[X_L|X_{0:L}]``.

    ``L`` may come out below ``length`` when the mixed-state search hits ``max_states``.
    """
    if length < 0:
        raise ConfigError(f"length must be >= 0, got {length}")
    n = presentation.n_states
    pi = presentation.stationary_distribution()
    starts = [pi] + [np.eye(n)[s] for s in range(n)]
    graphs = [mixed_state_graph(presentation, start=s, max_depth=length + 1, tol=tol,
                                max_states=max_states) for s in starts]
    # Mass after L steps must sit on expanded states: L <= explored depth - 1.
    L = min(length if g.complete else g.max_depth - 1 for g in graphs)
    if L < 0:
        raise ConfigError(f"max_states={max_states} is too small to bound the entropy rate")
    values = []
    for g in graphs:
        mass = np.zeros(g.n_states)
        mass[0] = 1.0
        for _ in range(L):
            mass = g.push(mass)
        values.append(float(mass @ g.next_symbol_entropy()))
    upper = values[0]
    lower = float(pi @ np.asarray(values[1:]))
    return lower, upper, L


def estimate_entropy_rate(
    presentation: Presentation,
    *,
    n_steps: int = 20_000,
    n_chains: int = 32,
    burn_in: int = 200,
    length: int = 12,
    seed: int = 0,
) -> EntropyRateEstimate:
    """Blackwell-measure estimate of ``h_mu`` with exact finite-L bounds.

    Parameters
    ----------
    presentation : Presentation
        Any irreducible presentation.
    n_steps, n_chains, burn_in : int
        Belief-path length, number of independent chains, steps discarded at the start.
    length : int
        Block length of the bounds (see :func:`entropy_rate_bounds`).
    seed : int, optional
        Seed of the sampled paths (keyword only).
    """
    if n_steps <= burn_in or n_chains < 2:
        raise ConfigError("need n_steps > burn_in and n_chains >= 2")
    s = sample(presentation, n_steps, batch=n_chains, seed=seed, beliefs=True)
    assert s.beliefs is not None
    # Next-symbol law from each belief: Pr(x | eta) = eta T[x] 1.
    emit = presentation.emission_probabilities  # (n, A)
    h = entropy_bits(np.asarray(s.beliefs[:, burn_in:], dtype=float) @ emit, axis=2)  # (B, T)
    per_chain = h.mean(axis=1)
    lower, upper, L = entropy_rate_bounds(presentation, length=length)
    return EntropyRateEstimate(
        estimate=float(per_chain.mean()),
        stderr=float(per_chain.std(ddof=1) / np.sqrt(n_chains)),
        lower=lower, upper=upper, length=L, n_chains=n_chains, n_steps=n_steps, seed=seed,
    )
