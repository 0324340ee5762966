"""Partition refinement for unifilar machines, and graph helpers (components, quotients).

A unifilar machine is given as ``successor[i, x]`` (next state on symbol x, -1 when ``x`` cannot
be emitted) and ``probability[i, x] = Pr(x | i)``. Two states are probabilistically equivalent
when they assign the same probability to every future word; Moore-style refinement finds the
coarsest such partition: start from classes of equal next-symbol distributions (to ``tol``), then
split a class whenever two members move, on the same symbol, to different classes. For an
irreducible unifilar presentation the quotient is its epsilon-machine (Travers & Crutchfield,
"Equivalence of history and generator epsilon-machines", arXiv:1111.4500).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from occamlab.processes._presentation import Presentation

__all__ = [
    "refine_partition", "quotient", "strong_components", "closed_components",
    "unifilar_graph", "graph_presentation",
]


def _relabel_rows(rows: np.ndarray) -> tuple[np.ndarray, int]:
    rows = np.ascontiguousarray(rows)
    void = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, inverse = np.unique(void, return_inverse=True)
    inverse = inverse.ravel()
    return inverse, int(inverse.max()) + 1 if inverse.size else 0


def refine_partition(
    successor: np.ndarray, probability: np.ndarray, *, tol: float = 1e-9
) -> np.ndarray:
    """Coarsest partition of probabilistically equivalent states; returns labels, shape (N,).

    Classes start as equal rounded ``probability`` rows (grid step ``tol``) and are refined by
    the classes of the successors until stable (at most N rounds, usually a few).
    """
    probs = np.rint(np.asarray(probability) / tol).astype(np.int64)
    labels, k = _relabel_rows(probs)
    while True:
        succ_lab = np.where(successor >= 0, labels[np.maximum(successor, 0)], -1)
        new, k_new = _relabel_rows(np.column_stack([labels, succ_lab]))
        if k_new == k:
            return new
        labels, k = new, k_new


def quotient(
    successor: np.ndarray, probability: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quotient machine on the classes of ``labels``: (successor, probability, representative)."""
    k = int(labels.max()) + 1
    rep = np.full(k, -1, dtype=np.int64)
    rep[labels[::-1]] = np.arange(labels.size)[::-1]  # first member of each class
    succ = successor[rep]
    q_succ = np.where(succ >= 0, labels[np.maximum(succ, 0)], -1)
    return q_succ, probability[rep].copy(), rep


def _adjacency(successor: np.ndarray) -> csr_matrix:
    n = successor.shape[0]
    src, x = np.nonzero(successor >= 0)
    dst = successor[src, x]
    return csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))


def strong_components(successor: np.ndarray) -> np.ndarray:
    """Strongly connected component label of every state (edges where successor >= 0)."""
    _, lab = connected_components(_adjacency(successor), directed=True, connection="strong")
    return lab


def closed_components(
    successor: np.ndarray, open_nodes: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[bool]]:
    """Components with a cycle whose edges stay inside, or lead only to ``open_nodes``.

    Returns the member arrays and, for each, whether it is genuinely closed (no edge to an open
    node). ``open_nodes`` is a boolean mask of unexplored states.
    """
    lab = strong_components(successor)
    n = successor.shape[0]
    open_mask = np.zeros(n, dtype=bool) if open_nodes is None else open_nodes
    src, x = np.nonzero(successor >= 0)
    dst = successor[src, x]
    leaves = (lab[src] != lab[dst]) & ~open_mask[dst]
    bad = np.zeros(int(lab.max()) + 1 if n else 0, dtype=bool)
    bad[lab[src[leaves]]] = True
    bad[lab[open_mask]] = True  # open nodes themselves are never part of a closed class
    internal = np.zeros_like(bad)
    inner = lab[src] == lab[dst]
    internal[lab[src[inner]]] = True
    to_open = np.zeros_like(bad)
    to_open[lab[src[open_mask[dst]]]] = True
    out, closed = [], []
    for c in np.flatnonzero(internal & ~bad):
        out.append(np.flatnonzero(lab == c))
        closed.append(not bool(to_open[c]))
    return out, closed


def unifilar_graph(p: Presentation) -> tuple[np.ndarray, np.ndarray]:
    """(successor, probability) of a unifilar presentation."""
    T = p.matrices  # (A, n, n)
    prob = T.sum(axis=2).T  # (n, A)
    succ = np.where(prob > 0, np.argmax(T, axis=2).T, -1)
    return succ, prob


def graph_presentation(
    successor: np.ndarray, probability: np.ndarray, *, symbols: tuple[str, ...], name: str,
    states: tuple[str, ...] = (),
) -> Presentation:
    """A :class:`Presentation` from a unifilar graph whose successors stay inside it."""
    n, A = successor.shape
    T = np.zeros((A, n, n))
    i, x = np.nonzero(successor >= 0)
    T[x, i, successor[i, x]] = probability[i, x]
    return Presentation(T, symbols=symbols, states=states, name=name)
