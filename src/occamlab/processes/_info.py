"""Exact information measures of a process: ``ProcessInfo`` and :func:`analyze`.

All values in bits. For a process with causal states ``S`` (stationary law ``pi``):

- statistical complexity ``C_mu = H[S] = -sum_s pi_s log2 pi_s``;
- entropy rate ``h_mu = sum_s pi_s H[X | S = s]`` (exact from the epsilon-machine; for a truncated,
  non-unifilar search, the Blackwell estimate with bounds);
- excess entropy ``E = I[past; future]`` by the spectral formula (see ``_epsilon``);
- crypticity ``chi = C_mu - E`` (the part of the stored state not shared with the future);
- Markov order ``R``: the least L such that every length-L history determines the causal state;
- cryptic order ``k``: the least l with ``H[S_l | X_{0:inf}] = 0`` (``chi = 0`` iff ``k = 0``);
- generative complexity of the given presentation: ``H[pi]`` of its own states.

When the causal states are infinite (SNS, Mess3) the search is truncated: ``statistical_complexity``
is then the entropy contributed by the recurrent causal states found (a lower bound on ``C_mu``;
``None`` when none was found, as for Mess3 whose causal states have no atoms), ``left_out`` is the
stationary probability of the causal states not found, ``excess_entropy`` is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.processes._cryptic import cryptic_order
from occamlab.processes._entropy_rate import estimate_entropy_rate
from occamlab.processes._epsilon import DEFAULT_PRECISION, causal_state_analysis
from occamlab.processes._mixed_state import DEFAULT_MAX_STATES, DEFAULT_TOL, mixed_state_graph
from occamlab.processes._presentation import Presentation

__all__ = ["ProcessInfo", "analyze", "block_entropies"]

_CRYPTIC_LIMIT = 300  # the pair graph has n^2 nodes


@dataclass(frozen=True)
class ProcessInfo(Rendered):
    """Computational-mechanics summary of one process (values in bits).

    The JSON keys ``statistical_complexity, entropy_rate, excess_entropy, crypticity,
    n_causal_states, unifilar, truncated`` are the command line's contract; ``n_causal_states``
    is ``None`` when the causal states are infinite (truncated search).
    """

    name: str
    params: dict[str, Any]
    statistical_complexity: float | None
    entropy_rate: float
    excess_entropy: float | None
    crypticity: float | None
    n_causal_states: int | None
    unifilar: bool
    truncated: bool
    left_out: float
    n_states: int
    generative_complexity: float
    markov_order: int | None
    cryptic_order: int | None
    excess_entropy_exact: bool
    entropy_rate_exact: bool
    entropy_rate_bounds: tuple[float, float] | None
    excess_entropy_bounds: tuple[float, float] | None
    depth: int
    n_mixed_states: int
    method: str
    tol: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    block_entropies: tuple[float, ...] = field(default_factory=tuple)
    precision: float = DEFAULT_PRECISION

    def _tables(self) -> list[Table]:
        exact = "exact" if self.excess_entropy_exact else (
            f"bounds {self.excess_entropy_bounds}" if self.excess_entropy_bounds
            else "lower bound")
        rows: list[list[Any]] = [
            ["statistical complexity C_mu", self.statistical_complexity,
             "lower bound" if self.truncated else "exact"],
            ["entropy rate h_mu", self.entropy_rate, "exact" if self.entropy_rate_exact
             else f"estimate, bounds {self.entropy_rate_bounds}"],
            ["excess entropy E", self.excess_entropy, exact],
            ["crypticity chi = C_mu - E", self.crypticity, ""],
            ["causal states", self.n_causal_states if not self.truncated else "infinite", ""],
            ["Markov order R",
             self.markov_order if self.markov_order is not None else "inf/unknown", ""],
            ["cryptic order k",
             self.cryptic_order if self.cryptic_order is not None else "inf/unknown", ""],
            ["presentation states", self.n_states, "unifilar" if self.unifilar else "non-unifilar"],
            ["presentation entropy H[pi]", self.generative_complexity, "generative complexity"],
        ]
        notes = [f"method: {self.method}; mixed states explored: {self.n_mixed_states}, "
                 f"depth {self.depth}; tol {self.tol:g}; precision asked {self.precision:g}"]
        if self.truncated:
            notes.append(
                f"truncated: causal states not found carry probability {self.left_out:.3g}"
            )
        notes.extend(self.notes)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in self.params.items())
        title = f"Process {self.name}" + (f" ({params})" if params else "") + ", bits"
        out = [Table(title, ["quantity", "value", "kind"], rows, notes)]
        if self.block_entropies:
            h = self.entropy_rate
            out.append(Table("Block entropies, bits", ["L", "H(L)", "E(L) = H(L) - L h_mu"],
                             [[L, v, v - L * h] for L, v in enumerate(self.block_entropies)],
                             ["E(L) rises to the excess entropy E as L grows"]))
        return out


# block entropies are exact, one mixed-state step per length: beyond this, E(L) has long converged
MAX_BLOCK_LENGTH = 100_000


def analyze(
    presentation: Presentation,
    *,
    tol: float = DEFAULT_TOL,
    max_states: int = DEFAULT_MAX_STATES,
    max_depth: int | None = None,
    method: str = "auto",
    seed: int = 0,
    block_length: int | None = None,
    precision: float = DEFAULT_PRECISION,
) -> ProcessInfo:
    """Compute ``C_mu``, ``h_mu``, ``E``, crypticity and the causal-state count of a process.

    Parameters
    ----------
    presentation : Presentation
        Any irreducible presentation (unifilar or not).
    tol : float
        Tolerance for merging beliefs and comparing probabilities (default 1e-9).
    max_states, max_depth : int
        Caps of the mixed-state search (infinite causal-state sets are truncated there).
    precision : float
        Without ``max_depth``, the mixed-state search deepens until results that cannot be exact
        are known to this precision (bits; probability of the causal states not found), or
        ``max_states`` is reached; time and memory grow with it. Default 1e-6. The result's
        bounds (``entropy_rate_bounds``, ``excess_entropy_bounds``, ``left_out``) say the
        precision reached.
    method : {"auto", "mixed-states"}
        See :func:`causal_state_analysis`.
    seed : int, optional
        Seed of the Blackwell estimate, used only when ``h_mu`` cannot be computed exactly.
    block_length : int, optional
        Also give the exact block entropies ``H(L)`` for ``L = 0 .. block_length``
        (:func:`block_entropies`).

    Examples
    --------
    >>> from occamlab.processes import build_process
    >>> info = analyze(build_process("golden-mean"))
    >>> round(info.statistical_complexity, 6), round(info.excess_entropy, 6)
    (0.918296, 0.251629)
    """
    if block_length is not None and (isinstance(block_length, bool) or
                                     not isinstance(block_length, int) or block_length < 0):
        raise ConfigError(f"block_length must be an integer >= 0, got {block_length!r}")
    if block_length is not None and block_length > MAX_BLOCK_LENGTH:
        raise ConfigError(f"block_length must be at most {MAX_BLOCK_LENGTH} (one entropy per "
                          f"length is computed and printed), got {block_length}")
    blocks = () if block_length is None else tuple(float(v) for v in block_entropies(
        presentation, block_length, tol=tol, max_states=max_states))
    a = causal_state_analysis(presentation, tol=tol, max_states=max_states, max_depth=max_depth,
                              method=method, precision=precision)
    notes: list[str] = []
    bounds = None
    E_bounds = a.excess_entropy_bounds
    if a.entropy_rate is None and a.entropy_rate_bounds is not None:
        # Causal states found with their probabilities: rigorous bounds, no sampling.
        bounds, h_exact = a.entropy_rate_bounds, False
        h_mu = 0.5 * (bounds[0] + bounds[1])
        notes.append(f"h_mu: midpoint of rigorous bounds from the causal states found at depth "
                     f"{a.depth} (width {bounds[1] - bounds[0]:.2g})")
    elif a.entropy_rate is not None:
        h_mu = a.entropy_rate
        h_exact = not a.approximate
        if a.approximate:
            notes.append("infinitely many causal states: beliefs within tol were merged, so "
                         "C_mu and h_mu are limits accurate to about tol")
    else:
        # Bounds at a block length the explored depth affords (time grows with it).
        est = estimate_entropy_rate(presentation, seed=seed,
                                    length=max(1, min(12, a.depth - 1)))
        bounds, h_exact = (est.lower, est.upper), False
        if est.upper - est.lower < 2 * est.stderr:
            # The exact bounds are tighter than the sampling error: report their midpoint.
            h_mu = 0.5 * (est.lower + est.upper)
            notes.append(f"h_mu: midpoint of exact bounds at L={est.length} (width "
                         f"{est.upper - est.lower:.2g}; Blackwell estimate {est.estimate:.6g})")
        else:
            h_mu = min(max(est.estimate, est.lower), est.upper)
            notes.append(f"h_mu: Blackwell estimate, stderr {est.stderr:.2g}, clipped to the "
                         f"exact bounds at L={est.length}")
        if a.excess_entropy_parts is not None and E_bounds is not None:
            H_L, L, gap = a.excess_entropy_parts
            E_bounds = (E_bounds[0], min(E_bounds[1], H_L - L * est.lower + gap))
    C = a.statistical_complexity
    E = a.excess_entropy
    chi = None if (a.truncated or C is None or E is None or not a.excess_entropy_exact) \
        else C - E
    if a.truncated and C is None:
        notes.append("no recurrent causal state found: C_mu is infinite (beliefs never recur)")
    if E_bounds is not None and not a.excess_entropy_exact:
        notes.append(f"E: rigorous bounds [{E_bounds[0]:.6g}, {E_bounds[1]:.6g}] at depth "
                     f"{a.depth} (width {E_bounds[1] - E_bounds[0]:.2g})")
    g = a.graph
    k_order = None
    if not a.truncated and a.stationary.size <= _CRYPTIC_LIMIT:
        k_order = cryptic_order(a.successor, a.probability)
    return ProcessInfo(
        name=presentation.name, params=dict(presentation.params),
        statistical_complexity=C, entropy_rate=float(h_mu), excess_entropy=E, crypticity=chi,
        n_causal_states=a.n_causal_states, unifilar=presentation.is_unifilar(),
        truncated=a.truncated, left_out=a.left_out, n_states=presentation.n_states,
        generative_complexity=presentation.state_entropy(), markov_order=a.markov_order,
        cryptic_order=k_order,
        excess_entropy_exact=a.excess_entropy_exact, entropy_rate_exact=h_exact,
        entropy_rate_bounds=bounds, excess_entropy_bounds=E_bounds, depth=a.depth,
        n_mixed_states=0 if g is None else g.n_states, method=a.method, tol=tol,
        notes=tuple(notes), block_entropies=blocks, precision=float(precision),
    )


def block_entropies(
    presentation: Presentation, max_length: int, *, tol: float = DEFAULT_TOL,
    max_states: int = DEFAULT_MAX_STATES,
) -> np.ndarray:
    """Block entropies ``H(L) = H[X_{0:L}]`` for ``L = 0 .. max_length``, bits.

    Exact by the chain rule over mixed states: ``H(L) = sum_{l=1}^{L} h(l)`` with
    ``h(l) = sum_eta p_{l-1}(eta) H[X | eta]``.
    """
    g = mixed_state_graph(presentation, tol=tol, max_states=max_states,
                          max_depth=max_length)
    if not g.complete and g.max_depth < max_length:
        raise ConfigError(
            f"block entropies up to L={max_length} need more than max_states={max_states} "
            f"mixed states (reached L={g.max_depth})"
        )
    H = g.next_symbol_entropy()
    mass = np.zeros(g.n_states)
    mass[0] = 1.0
    out = [0.0]
    for _ in range(max_length):
        out.append(out[-1] + float(mass @ H))
        mass = g.push(mass)
    return np.asarray(out)
