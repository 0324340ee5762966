"""The epsilon-machine (causal states) of a process, and its exact excess entropy.

Route 1 (unifilar input): minimize the presentation itself by partition refinement.
Route 2 (any input): build the mixed-state presentation from ``pi``, minimize it, keep its
recurrent part. When the search is truncated (infinitely many causal states, e.g. SNS, Mess3),
the recurrent part found so far is reported with the probability it leaves out.

Excess entropy, spectral formula (Crutchfield, Riechers & Ellison, arXiv:1309.3792) on the
minimized MSP with transition matrix ``W``, start state ``delta_pi``, per-state next-symbol
entropies ``H`` and stationary projector ``W_1 = 1 pi_W``::

    E = <delta_pi| (I - W + W_1)^-1 - W_1 |H> = sum_{L>=1} (h(L) - h_mu)

with ``h(L) = <delta_pi| W^(L-1) |H>`` the entropy-rate estimate at block length L.

Depth by precision. Without ``max_depth`` the mixed-state search deepens in doublings (64, 128,
... layers, each search from scratch, so at most twice the cost of the last) and stops as soon as
the graph closes (exact results, as before), the causal states found leave out less probability
than ``precision`` (infinitely many causal states with a recurrent chain, e.g. SNS: the "renewal"
route, exact probabilities of the states found), the rigorous bounds on ``E`` are narrower than
``precision`` (machines that synchronize only asymptotically, e.g. machines inferred from data),
or ``max_states`` is reached (Mess3, whose beliefs never recur). Time and memory therefore grow with
the precision asked for, not with a fixed cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, identity
from scipy.sparse.linalg import LinearOperator, gmres, spsolve

from occamlab.errors import ConfigError
from occamlab.processes._minimize import (
    closed_components,
    graph_presentation,
    quotient,
    refine_partition,
    unifilar_graph,
)
from occamlab.processes._mixed_state import (
    DEFAULT_MAX_STATES,
    DEFAULT_TOL,
    MixedStateGraph,
    mixed_state_graph,
)
from occamlab.processes._presentation import Presentation, entropy_bits, stationary_of

__all__ = [
    "CausalStateAnalysis", "causal_state_analysis", "spectral_excess_entropy", "epsilon_machine",
    "DEFAULT_PRECISION",
]

_DENSE_LIMIT = 3000  # above this many states, stationary laws and solves go sparse
_MACHINE_LIMIT = 5000  # build a dense Presentation of the epsilon-machine only below this
_FIRST_DEPTH = 64  # first depth of the deepening mixed-state search
_ROUND_OFF = 1e-12  # rigorous bounds are widened by this for floating-point round-off
#: Default target precision (bits, or probability left out) of results that are not exact.
DEFAULT_PRECISION = 1e-6


@dataclass(frozen=True, eq=False)
class CausalStateAnalysis:
    """Internal value behind :class:`~occamlab.processes.ProcessInfo` (not a rendered result).

    ``successor``/``probability`` describe the recurrent causal states (the epsilon-machine's
    unifilar graph) and ``stationary`` their stationary law; for a truncated search these are the
    recurrent states found, with ``stationary`` their exact depth-``depth`` probabilities and
    ``left_out = 1 - sum(stationary)``.
    """

    successor: np.ndarray
    probability: np.ndarray
    stationary: np.ndarray
    machine: Presentation | None
    truncated: bool
    left_out: float
    graph: MixedStateGraph | None
    depth: int
    excess_entropy: float | None
    excess_entropy_exact: bool
    markov_order: int | None
    method: str
    approximate: bool = False
    excess_entropy_bounds: tuple[float, float] | None = None
    entropy_rate_bounds: tuple[float, float] | None = None
    #: ``(H(L), L, H[R_L | X_{0:L}])`` of a truncated search, to tighten ``E``'s upper bound
    #: with a better lower bound on ``h_mu``.
    excess_entropy_parts: tuple[float, int, float] | None = None

    @property
    def n_causal_states(self) -> int | None:
        return None if self.truncated else int(self.stationary.size)

    @property
    def statistical_complexity(self) -> float | None:
        if self.stationary.size == 0:
            return None
        return float(entropy_bits(self.stationary))

    @property
    def entropy_rate(self) -> float | None:
        """``h_mu = sum_s pi_s H[X | s]`` when the causal states are complete."""
        if self.truncated and not self.approximate:
            return None
        return float(self.stationary @ entropy_bits(self.probability, axis=1))


def _stationary_graph(successor: np.ndarray, probability: np.ndarray) -> np.ndarray:
    n = successor.shape[0]
    if n <= _DENSE_LIMIT:
        W = np.zeros((n, n))
        i, x = np.nonzero(successor >= 0)
        np.add.at(W, (i, successor[i, x]), probability[i, x])
        return stationary_of(W)
    W = _sparse_w(successor, probability)
    # Solve pi (I - W) = 0 with the last equation replaced by sum(pi) = 1.
    M = (identity(n, format="csr") - W).T.tolil()
    M[n - 1, :] = np.ones(n)
    b = np.zeros(n)
    b[-1] = 1.0
    pi = spsolve(M.tocsc(), b)
    pi = np.clip(pi, 0, None)
    return pi / pi.sum()


def _sparse_w(successor: np.ndarray, probability: np.ndarray) -> csr_matrix:
    n = successor.shape[0]
    i, x = np.nonzero(successor >= 0)
    return csr_matrix((probability[i, x], (i, successor[i, x])), shape=(n, n))


def spectral_excess_entropy(
    successor: np.ndarray, probability: np.ndarray, start: int, stationary: np.ndarray
) -> float:
    """``E = <delta_start| (I - W + 1 pi)^-1 |H> - h_mu`` for a finite unifilar MSP, bits.

    ``stationary`` is the stationary law over all states of the graph (zero on transients).
    """
    n = successor.shape[0]
    H = entropy_bits(probability, axis=1)
    h_mu = float(stationary @ H)
    if n <= _DENSE_LIMIT:
        W = np.zeros((n, n))
        i, x = np.nonzero(successor >= 0)
        np.add.at(W, (i, successor[i, x]), probability[i, x])
        M = np.eye(n) - W + np.outer(np.ones(n), stationary)
        sol = np.linalg.solve(M, H)
    else:
        W = _sparse_w(successor, probability)

        def mv(v: np.ndarray) -> np.ndarray:
            return v - W @ v + (stationary @ v) * np.ones(n)

        op = LinearOperator((n, n), matvec=mv, dtype=float)
        sol, info = gmres(op, H, rtol=1e-13, atol=0.0, restart=200, maxiter=2000)
        if info != 0:  # pragma: no cover - ill-conditioned huge graphs
            return float("nan")
    return float(sol[start] - h_mu)


def _longest_path(q_succ: np.ndarray, transient: np.ndarray, start: int) -> int | None:
    """Length of the longest walk from ``start`` through transient states (None if a cycle)."""
    if not transient[start]:
        return 0
    memo: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[int, int]] = [(start, 0)]
    # Iterative DFS with post-order evaluation: longest[v] = 1 + max over transient successors.
    while stack:
        v, k = stack.pop()
        if k == 0:
            if v in memo:
                continue
            on_stack.add(v)
        nxt = [int(u) for u in q_succ[v] if u >= 0 and transient[u]]
        if k < len(nxt):
            stack.append((v, k + 1))
            u = nxt[k]
            if u in on_stack:
                return None
            if u not in memo:
                stack.append((u, 0))
            continue
        on_stack.discard(v)
        memo[v] = 1 + max((memo[u] for u in nxt), default=0)
    return memo[start]


def causal_state_analysis(
    presentation: Presentation,
    *,
    tol: float = DEFAULT_TOL,
    max_states: int = DEFAULT_MAX_STATES,
    max_depth: int | None = None,
    method: str = "auto",
    precision: float = DEFAULT_PRECISION,
) -> CausalStateAnalysis:
    """Causal states, exact ``E`` and Markov order of the process a presentation generates.

    Parameters
    ----------
    presentation : Presentation
        Irreducible presentation (unifilar or not).
    tol : float
        Belief-merging and probability-comparison tolerance (default 1e-9).
    max_states, max_depth : int
        Caps of the mixed-state search (see :func:`mixed_state_graph`).
    method : {"auto", "mixed-states"}
        ``"auto"`` minimizes a unifilar presentation directly; ``"mixed-states"`` always goes
        through the mixed-state presentation (an independent second algorithm).
    precision : float
        Without ``max_depth``: deepen the mixed-state search until the probability of causal
        states not found, or the width of the bounds on ``E``, is below this (bits; default
        1e-6); see the module notes.
    """
    if method not in ("auto", "mixed-states"):
        raise ConfigError(f"method must be 'auto' or 'mixed-states', got {method!r}")
    if not (0 < precision < 1):
        raise ConfigError(f"precision must be in (0, 1), got {precision}")
    presentation = presentation.recurrent_part()  # validates ergodicity, drops transients
    pi = presentation.stationary_distribution()
    syms = presentation.symbols
    g0: MixedStateGraph | None = None
    approximate = False
    E0: float | None = None
    if method == "auto" and presentation.is_unifilar():
        succ, prob = unifilar_graph(presentation)
        lab = refine_partition(succ, prob, tol=tol)
        r_succ, r_prob, _ = quotient(succ, prob, lab)
        r_pi = np.bincount(lab, weights=pi, minlength=r_succ.shape[0])
        how = "minimized presentation"
    else:
        how = "mixed states"
        g0 = _deepen(presentation, tol, max_states, max_depth,
                     lambda g: _found_enough(g, tol, precision))
        found = _recurrent_from_graph(g0, tol)
        if found is None:
            return _truncated(g0)
        r_succ, r_prob, r_pi, E0 = found
        approximate = not g0.exact
    machine = _machine(r_succ, r_prob, syms, presentation.name)
    E, E_exact, order, depth = E0, E0 is not None, None, 0 if g0 is None else g0.max_depth
    E_bounds: tuple[float, float] | None = None
    if machine is not None:
        h_mu_r = float(r_pi @ entropy_bits(r_prob, axis=1))
        g = _deepen(machine, tol, max_states, max_depth,
                    lambda g: _bounds_width(g, h_mu_r) <= precision)
        depth = g.max_depth
        g0 = g0 if g0 is not None else g
        if g.complete:
            if E is None:
                found = _recurrent_from_graph(g, tol)
                assert found is not None
                E, E_exact = found[3], True
            delta = g.beliefs.max(axis=1) > 1.0 - tol
            order = _longest_path(g.successor, ~delta, 0)
        elif E is None:
            # E(L) = H(L) - L h_mu <= E <= E(L) + H[S_L | X_{0:L}]: the lower bound because
            # h(l) >= h_mu, the upper because chi = H[S_0 | future] >= H[S_0 | X_{0:L}, S_L].
            E_bounds = _e_bounds(g, h_mu_r)
            E = E_bounds[0]
    return CausalStateAnalysis(
        successor=r_succ, probability=r_prob, stationary=r_pi, machine=machine,
        truncated=approximate, left_out=0.0, graph=g0, depth=depth, excess_entropy=E,
        excess_entropy_exact=E_exact and not approximate, markov_order=order,
        method=how + (" (closed by merging beliefs within tol)" if approximate else ""),
        approximate=approximate, excess_entropy_bounds=E_bounds,
    )


def _deepen(presentation: Presentation, tol: float, max_states: int, max_depth: int | None,
            enough: Callable[[MixedStateGraph], bool]) -> MixedStateGraph:
    """The mixed-state graph at ``max_depth``, or deepened by doublings until it closes, hits
    ``max_states`` or ``enough(graph)`` holds (see the module notes)."""
    if max_depth is not None:
        return mixed_state_graph(presentation, tol=tol, max_states=max_states, max_depth=max_depth)
    depth = _FIRST_DEPTH
    while True:
        g = mixed_state_graph(presentation, tol=tol, max_states=max_states, max_depth=depth)
        if g.complete or g.max_depth < depth or enough(g):
            return g
        depth *= 2


def _e_bounds(g: MixedStateGraph, h_mu: float) -> tuple[float, float]:
    """``E(L) = H(L) - L h_mu <= E <= E(L) + H[S_L | X_{0:L}]`` at the explored depth L: the lower
    bound because ``h(l) >= h_mu``, the upper because ``chi = H[S_0 | future] >= H[S_0 | X_{0:L},
    S_L]`` (``S``: the states of the unifilar machine whose mixed states ``g`` holds)."""
    E = float(np.sum(_h_of_L(g) - h_mu))
    gap = float(g.depth_distributions(g.max_depth) @ entropy_bits(g.beliefs, axis=1))
    return E, E + gap


def _bounds_width(g: MixedStateGraph, h_mu: float) -> float:
    lo, hi = _e_bounds(g, h_mu)
    return hi - lo


def _found_enough(g: MixedStateGraph, tol: float, precision: float) -> bool:
    """Stop deepening a non-unifilar search: a closed finite recurrent part was found (its
    epsilon-machine gives exact measures), or the recurrent states found leave out less than
    ``precision`` of the probability."""
    comps, closed = closed_components(g.successor, ~g.expanded)
    if not comps:
        return False
    if all(closed):
        return True
    mass = g.depth_distributions(g.max_depth)
    return bool(1.0 - mass[np.concatenate(comps)].sum() <= precision)


def _h_of_L(g: MixedStateGraph) -> np.ndarray:
    """``h(l) = <delta_pi| W^(l-1) |H>`` for l = 1 .. max_depth (on expanded states)."""
    H = g.next_symbol_entropy()
    mass = np.zeros(g.n_states)
    mass[0] = 1.0
    out = []
    for _ in range(g.max_depth):
        out.append(float((mass * H).sum()))  # not BLAS: a threaded ddot per layer is slow
        mass = g.push(mass)
    return np.asarray(out)


def _recurrent_from_graph(
    g: MixedStateGraph, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None] | None:
    """Minimized recurrent part (succ, prob, pi) and E of a mixed-state graph, or None."""
    if g.complete:
        lab = refine_partition(g.successor, g.probability, tol=tol)
        q_succ, q_prob, _ = quotient(g.successor, g.probability, lab)
        comps, _ = closed_components(q_succ)
        rec = np.concatenate(comps)
        r_succ, r_prob = _restrict(q_succ, q_prob, rec)
        r_pi = _stationary_graph(r_succ, r_prob)
        q_pi = np.zeros(q_succ.shape[0])
        q_pi[rec] = r_pi
        return r_succ, r_prob, r_pi, spectral_excess_entropy(q_succ, q_prob, int(lab[0]), q_pi)
    comps, closed = closed_components(g.successor, ~g.expanded)
    if not comps or not all(closed):
        return None
    # A finite recurrent part, closed, although the transient part goes on.
    sub_succ, sub_prob = _restrict(g.successor, g.probability, np.concatenate(comps))
    lab = refine_partition(sub_succ, sub_prob, tol=tol)
    r_succ, r_prob, _ = quotient(sub_succ, sub_prob, lab)
    return r_succ, r_prob, _stationary_graph(r_succ, r_prob), None


def _restrict(succ: np.ndarray, prob: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, ...]:
    mapping = np.full(succ.shape[0], -1, dtype=np.int64)
    mapping[keep] = np.arange(keep.size)
    sub = succ[keep]
    return np.where(sub >= 0, mapping[np.maximum(sub, 0)], -1), prob[keep]


def _truncated(g: MixedStateGraph) -> CausalStateAnalysis:
    """Infinitely many causal states: report the recurrent ones found, what they leave out, and
    rigorous bounds on ``h_mu`` and ``E``.

    At explored depth L with ``p_l`` the distribution over mixed states after l symbols and
    ``H_eta = H[X | eta]``: ``h_mu <= h(L) = sum p_{L-1}(eta) H_eta`` (Blackwell) and
    ``h_mu >= sum_{sigma found} p_{L-1}(sigma) H_sigma``, since ``h_mu = sum_sigma pi_sigma
    H_sigma`` over all causal states and ``p_l(sigma) <= pi_sigma``. ``E >= E(L) = H(L) - L h(L)``
    (``h(l) >= h(L) >= h_mu``), and

        E <= H(L) - L h_lo + sum_{eta not found} p_L(eta) H[eta]        (and E <= H[pi_R]),

    ``H[eta]`` the entropy of the belief over the presentation's states ``R``. Proof sketch: after
    a word ``w`` whose mixed state is a causal state ``sigma`` found, the future has the law of
    ``sigma``; after any other word, ``H[future | w] <= H[eta(w)] + sum_r eta_r(w) H[future | r]``;
    the unsynchronized mass over ``R`` is ``sum_c u(c) c`` (``u(c) = pi_c - p_L(c)``) and
    ``H[future | c] >= sum_r c_r H[future | r]`` (concavity), so ``H[X_{L:M} | X_{0:L}] <= (M - L)
    h_mu + sum_{eta not found} p_L(eta) H[eta]``. The gap is at most ``left_out log2 |R|``.
    """
    h = _h_of_L(g)
    mass = g.depth_distributions(g.max_depth)
    comps, _ = closed_components(g.successor, ~g.expanded)
    rec = np.concatenate(comps) if comps else np.arange(0, dtype=np.int64)
    rec = rec[mass[rec] > 0]
    r_succ, r_prob = _restrict(g.successor, g.probability, rec)
    p_rec = mass[rec]  # exact stationary probabilities when synchronization is exact (renewal)
    E_low = float(np.sum(h - h[-1])) if h.size else None
    h_bounds = E_bounds = None
    parts = None
    if h.size and rec.size:
        before = g.depth_distributions(g.max_depth - 1)
        h_lo = float(before[rec] @ entropy_bits(g.probability[rec], axis=1))
        h_hi = float(h[-1])
        h_bounds = (min(h_lo, h_hi) - _ROUND_OFF, h_hi + _ROUND_OFF)
    if h.size:
        h_lo_any = h_bounds[0] if h_bounds else 0.0
        unsync = mass.copy()
        unsync[rec] = 0.0  # words synchronized to a causal state found leave no gap
        gap = float(unsync @ entropy_bits(g.beliefs, axis=1))
        upper = float(np.sum(h) - h.size * h_lo_any + gap)
        cap = float(entropy_bits(g.beliefs[0]))  # H[pi_R]: E <= I[past; R_0] <= H[R_0]
        E_bounds = ((E_low if E_low is not None else 0.0) - _ROUND_OFF, min(upper, cap) + _ROUND_OFF)
        parts = (float(np.sum(h)), int(h.size), gap)
    return CausalStateAnalysis(
        successor=r_succ, probability=r_prob, stationary=p_rec, machine=None,
        truncated=True, left_out=float(max(0.0, 1.0 - p_rec.sum())), graph=g, depth=g.max_depth,
        excess_entropy=E_low, excess_entropy_exact=False, markov_order=None,
        method="mixed states (truncated)", excess_entropy_bounds=E_bounds,
        entropy_rate_bounds=h_bounds, excess_entropy_parts=parts,
    )


def _machine(succ: np.ndarray, prob: np.ndarray, syms: tuple[str, ...],
             name: str) -> Presentation | None:
    if succ.shape[0] > _MACHINE_LIMIT:
        return None
    return graph_presentation(succ, prob, symbols=syms, name=f"{name} epsilon-machine")


def epsilon_machine(
    presentation: Presentation,
    *,
    tol: float = DEFAULT_TOL,
    max_states: int = DEFAULT_MAX_STATES,
    max_depth: int | None = None,
) -> Presentation:
    """The epsilon-machine (minimal unifilar presentation) of a finite-state process.

    Unifilar input is minimized directly (no mixed states, so this is the fast path); other
    input goes through the mixed-state presentation.

    Raises
    ------
    ConfigError
        When the causal states are infinite (the search was truncated) or too many to build a
        dense presentation.
    """
    presentation = presentation.recurrent_part()  # validates ergodicity, drops transients
    if presentation.is_unifilar():
        succ, prob = unifilar_graph(presentation)
        lab = refine_partition(succ, prob, tol=tol)
        r_succ, r_prob, _ = quotient(succ, prob, lab)
    else:
        g = mixed_state_graph(presentation, tol=tol, max_states=max_states, max_depth=max_depth)
        found = _recurrent_from_graph(g, tol)
        if found is None or not g.exact:
            raise ConfigError(f"{presentation.name!r} has infinitely many causal states (the "
                              "mixed-state search did not close exactly)")
        r_succ, r_prob = found[0], found[1]
    m = _machine(r_succ, r_prob, presentation.symbols, presentation.name)
    if m is None:
        raise ConfigError(f"epsilon-machine of {presentation.name!r} has {r_succ.shape[0]} states,"
                          f" more than {_MACHINE_LIMIT} (use causal_state_analysis)")
    return m
