"""Mixed-state (belief-state) presentation: breadth-first search over beliefs from ``pi``.

A mixed state is a belief ``eta`` over the states of a presentation. Reading symbol ``x`` maps it
to ``eta' = eta T[x] / (eta T[x] 1)`` with probability ``Pr(x | eta) = eta T[x] 1``. Starting at
the stationary law, the reachable beliefs and these transitions form the mixed-state presentation
(MSP), which is unifilar by construction. Beliefs equal within ``tol`` (max norm, by rounding to a
grid of step ``tol``) are merged; the search stops at ``max_depth`` or before a layer would take
the count past ``max_states`` (the graph then says it is truncated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occamlab.errors import ConfigError
from occamlab.processes._presentation import Presentation, entropy_bits

__all__ = ["MixedStateGraph", "mixed_state_graph", "DEFAULT_TOL", "DEFAULT_MAX_STATES"]

#: Beliefs closer than this (max norm) are the same mixed state.
DEFAULT_TOL = 1e-9
#: Merges of beliefs farther apart than this are approximate (the tolerance did the merging).
EXACT_MERGE = 1e-12
#: Default cap on the number of mixed states.
DEFAULT_MAX_STATES = 200_000


@dataclass(frozen=True, eq=False)
class MixedStateGraph:
    """The explored mixed-state graph (an internal value, not a rendered result).

    Attributes
    ----------
    beliefs : (N, n_states) array
        The mixed states; row 0 is the stationary law.
    depth : (N,) int array
        Depth (word length) at which each mixed state was first reached.
    successor : (N, n_symbols) int array
        Index of the next mixed state on each symbol, -1 where the symbol has probability 0 or
        the state was not expanded.
    probability : (N, n_symbols) array
        ``Pr(x | eta)``; rows of unexpanded states are zero.
    expanded : (N,) bool array
        Whether the state's successors were computed.
    complete : bool
        True when every reachable mixed state was expanded (the MSP is finite and exact).
    max_depth : int
        Depth of the deepest fully explored layer boundary (the last layer reached).
    """

    beliefs: np.ndarray
    depth: np.ndarray
    successor: np.ndarray
    probability: np.ndarray
    expanded: np.ndarray
    complete: bool
    max_depth: int
    tol: float
    max_merge_distance: float = 0.0

    @property
    def exact(self) -> bool:
        """True when every merge joined beliefs equal to round-off (``< 1e-12``)."""
        return self.max_merge_distance < EXACT_MERGE

    @property
    def n_states(self) -> int:
        return int(self.beliefs.shape[0])

    def next_symbol_entropy(self) -> np.ndarray:
        """``H[X | eta]`` for every mixed state, bits, shape (N,)."""
        return entropy_bits(self.probability, axis=1)

    def depth_distributions(self, length: int) -> np.ndarray:
        """Distribution over mixed states after reading ``length`` symbols from ``pi``.

        ``p_L(eta) = sum over words w of length L with eta(w) = eta of Pr(w)``, computed by pushing
        probability mass through the graph. Requires ``length <= max_depth``.
        """
        if length > self.max_depth and not self.complete:
            raise ConfigError(f"length {length} exceeds the explored depth {self.max_depth}")
        mass = np.zeros(self.n_states)
        mass[0] = 1.0
        for _ in range(length):
            mass = self.push(mass)
        return mass

    def push(self, mass: np.ndarray) -> np.ndarray:
        """One step of mass propagation: ``mass'[j] = sum_{i,x: succ(i,x)=j} mass[i] Pr(x|i)``."""
        ok = self.successor >= 0
        src = np.nonzero(ok)[0]
        w = mass[src] * self.probability[ok]
        return np.bincount(self.successor[ok], weights=w, minlength=self.n_states)


def mixed_state_graph(
    presentation: Presentation,
    *,
    tol: float = DEFAULT_TOL,
    max_states: int = DEFAULT_MAX_STATES,
    max_depth: int | None = None,
    start: np.ndarray | None = None,
) -> MixedStateGraph:
    """Breadth-first search of the mixed-state presentation from the stationary law.

    Parameters
    ----------
    presentation : Presentation
        An irreducible presentation.
    tol : float
        Merge beliefs that agree to ``tol`` in max norm (grid rounding), default 1e-9.
    max_states : int
        Stop before a layer would take the number of mixed states past this cap.
    max_depth : int, optional
        Stop after this many layers (word length).
    start : array, optional
        Starting belief (default: the stationary law).

    Returns
    -------
    MixedStateGraph
    """
    if not (0 < tol < 0.5):
        raise ConfigError(f"tol must be in (0, 0.5), got {tol}")
    if max_states < 1:
        raise ConfigError(f"max_states must be >= 1, got {max_states}")
    if max_depth is not None and max_depth < 0:
        raise ConfigError(f"max_depth must be >= 0, got {max_depth}")
    T = presentation.matrices  # (A, n, n)
    A, n = T.shape[0], T.shape[1]
    eta0 = presentation.stationary_distribution() if start is None else np.asarray(start, float)
    scale = 1.0 / tol
    void = np.dtype((np.void, 8 * n))

    def keys_of(b: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rint(b * scale).astype(np.int64)).view(void).ravel()

    index: dict[bytes, int] = {keys_of(eta0[None, :])[0].tobytes(): 0}
    beliefs = [eta0[None, :]]
    store = np.empty((1024, n))  # all beliefs by id, grown by doubling (merge checks)
    store[0] = eta0
    merge_dist = 0.0
    depths = [np.zeros(1, dtype=np.int64)]
    succ_blocks: list[np.ndarray] = []
    prob_blocks: list[np.ndarray] = []
    n_total = 1
    frontier = np.array([0])
    frontier_beliefs = eta0[None, :]
    depth = 0
    complete = True
    while frontier.size:
        if max_depth is not None and depth >= max_depth:
            complete = False
            break
        U = np.einsum("fi,xij->fxj", frontier_beliefs, T)  # (F, A, n) unnormalized
        P = U.sum(axis=2)  # (F, A)
        live = P > 0
        fi, xi = np.nonzero(live)
        nb = U[fi, xi] / P[fi, xi][:, None]  # (M, n)
        keys = keys_of(nb)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        ids, new_rows = _known_ids(uniq, index)
        if n_total + len(new_rows) > max_states:
            complete = False
            break
        # How far apart were the beliefs merged into one state (within the layer, and with
        # states seen before)?
        if nb.shape[0]:
            inv = inverse.ravel()
            merge_dist = max(merge_dist, float(np.abs(nb - nb[first[inv]]).max()))
            old = ids >= 0
            if old.any():
                gap = np.abs(nb[first[old]] - store[ids[old]]).max()
                merge_dist = max(merge_dist, float(gap))
        new_rows_arr = np.asarray(new_rows, dtype=np.int64)
        new_ids = n_total + np.arange(new_rows_arr.size)
        for u, j in zip(new_rows_arr.tolist(), new_ids.tolist(), strict=True):
            index[uniq[u].tobytes()] = j
        ids[new_rows_arr] = new_ids
        n_total += new_rows_arr.size
        while store.shape[0] < n_total:
            store = np.concatenate([store, np.empty_like(store)])
        store[new_ids] = nb[first[new_rows_arr]]
        succ = np.full((frontier.size, A), -1, dtype=np.int64)
        succ[fi, xi] = ids[inverse.ravel()]
        succ_blocks.append(succ)
        prob_blocks.append(np.where(live, P, 0.0))
        depth += 1
        frontier = new_ids
        frontier_beliefs = nb[first[new_rows_arr]]
        beliefs.append(frontier_beliefs)
        depths.append(np.full(new_ids.size, depth, dtype=np.int64))
    successor, probability, expanded = _assemble(succ_blocks, prob_blocks, n_total, A)
    return MixedStateGraph(
        beliefs=np.concatenate(beliefs), depth=np.concatenate(depths), successor=successor,
        probability=probability, expanded=expanded, complete=complete, max_depth=depth,
        tol=tol, max_merge_distance=merge_dist,
    )


def _known_ids(uniq: np.ndarray, index: dict[bytes, int]) -> tuple[np.ndarray, list[int]]:
    """Ids of the layer's distinct beliefs already in ``index`` (-1 where new), and the rows of
    the new ones."""
    ids = np.empty(uniq.size, dtype=np.int64)
    new_rows = []
    for u in range(uniq.size):
        j = index.get(uniq[u].tobytes())
        if j is None:
            new_rows.append(u)
            ids[u] = -1
        else:
            ids[u] = j
    return ids, new_rows


def _assemble(succ_blocks: list[np.ndarray], prob_blocks: list[np.ndarray], n_total: int,
              A: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Successor and probability tables of every state, and which states were expanded (exactly
    the first ``sum(len(block))`` ids, in order)."""
    n_exp = sum(b.shape[0] for b in succ_blocks)
    successor = np.full((n_total, A), -1, dtype=np.int64)
    probability = np.zeros((n_total, A))
    if n_exp:
        successor[:n_exp] = np.concatenate(succ_blocks)
        probability[:n_exp] = np.concatenate(prob_blocks)
    expanded = np.zeros(n_total, dtype=bool)
    expanded[:n_exp] = True
    return successor, probability, expanded
