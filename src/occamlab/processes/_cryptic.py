"""Cryptic order of a finite epsilon-machine (Mahoney, Ellison, James & Crutchfield 2011).

The cryptic order is ``k = min { l : H[S_l | X_{0:inf}] = 0 }``: the number of steps after which
the future determines the causal state. Crypticity ``chi = C_mu - E`` is zero iff ``k = 0``, and
``k <= R`` (the Markov order).

Computed on the pair graph of the unifilar machine: a pair ``(s, t)`` moves on a symbol ``x`` both
states can emit to ``(succ(s, x), succ(t, x))``. A pair is *live* when the futures the two states
share have positive probability under both: it can reach the diagonal (the states merge), or a
closed set of pairs whose two states always allow the same symbols. Then ``k`` is the number of
pairs on the longest walk through live off-diagonal pairs, and infinite when such a walk can cycle.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["cryptic_order"]


def cryptic_order(successor: np.ndarray, probability: np.ndarray) -> int | None:
    """Cryptic order of the unifilar machine ``(successor, probability)``; None when infinite."""
    n, A = successor.shape
    allowed = probability > 0  # (n, A)
    s = np.repeat(np.arange(n), n)  # pair id = s * n + t
    t = np.tile(np.arange(n), n)
    both = allowed[s] & allowed[t]  # (n^2, A)
    pi_, xi = np.nonzero(both)
    dst = successor[s[pi_], xi] * n + successor[t[pi_], xi]
    N = n * n
    graph = csr_matrix((np.ones(pi_.size), (pi_, dst)), shape=(N, N))
    _, lab = connected_components(graph, directed=True, connection="strong")
    same_support = np.all(allowed[s] == allowed[t], axis=1)
    # Sticky components: every member has equal supports and no edge leaves the component.
    n_comp = int(lab.max()) + 1
    bad = np.zeros(n_comp, dtype=bool)
    bad[lab[~same_support]] = True
    bad[lab[pi_][lab[pi_] != lab[dst]]] = True
    has_edge = np.zeros(n_comp, dtype=bool)
    has_edge[lab[pi_]] = True
    target = (~bad[lab] & has_edge[lab]) | (s == t)
    # Live: can reach a target (reverse breadth-first search).
    live = target.copy()
    rev = graph.T.tocsr()
    frontier = np.flatnonzero(live)
    while frontier.size:
        nxt = np.unique(rev[frontier].indices)
        nxt = nxt[~live[nxt]]
        live[nxt] = True
        frontier = nxt
    off = live & (s != t)
    if not off.any():
        return 0
    # Longest walk through live off-diagonal pairs; a cycle there means infinite order.
    sub = graph[off][:, off]
    ids = np.flatnonzero(off)
    n_sub, sub_lab = connected_components(sub, directed=True, connection="strong")
    if n_sub < ids.size or sub.diagonal().any():
        return None
    # A DAG: longest path by repeated relaxation in topological order (Kahn).
    indeg = np.asarray(sub.sum(axis=0)).ravel().astype(int)
    longest = np.ones(ids.size, dtype=int)
    order = list(np.flatnonzero(indeg == 0))
    sub = sub.tocsr()
    while order:
        v = order.pop()
        for u in sub.indices[sub.indptr[v]:sub.indptr[v + 1]]:
            longest[u] = max(longest[u], longest[v] + 1)
            indeg[u] -= 1
            if indeg[u] == 0:
                order.append(u)
    return int(longest.max())
