"""Markov chains from a transition matrix, and the exact KL divergence rate between processes.

The Kullback-Leibler divergence rate of a process ``P`` from a process ``Q`` over the same
alphabet is ``D(P || Q) = lim_n (1/n) sum_w P(w) log2 P(w)/Q(w)`` over words ``w`` of length
``n``: the extra bits per symbol a code (or a predictor's log-loss) built for ``Q`` pays on data
from ``P``. For unifilar presentations it is a finite sum (Cover & Thomas 2006, section 4.4, for
Markov chains; Rached, Alajaji & Campbell 2004 for the general finite-state case): run ``P`` and
``Q``'s predictor side by side on ``P``'s symbols, so that the pair of states ``(s, r)`` is a
Markov chain, and average the divergence of their next-symbol laws under its stationary law
``pi``:

    D(P || Q) = sum_{s, r} pi(s, r) sum_x P(x | s) log2 [P(x | s) / Q(x | r)].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from occamlab.errors import ConfigError, DataError
from occamlab.processes._presentation import Presentation, stationary_of

__all__ = ["markov_chain", "kl_divergence_rate"]


def markov_chain(transition: Any, *, symbols: Sequence[str] | None = None,
                 name: str = "markov-chain") -> Presentation:
    """The first-order Markov chain with ``transition[i, j] = Pr(next symbol j | symbol i)``.

    The presentation's states are the last symbol (state ``i`` emits ``j`` and moves to state
    ``j``), so it is unifilar and its entropy rate is ``sum_i pi_i H(transition[i])``.

    Parameters
    ----------
    transition : array_like, shape (k, k)
        A row-stochastic matrix over ``k >= 1`` symbols.
    symbols : sequence of str, optional
        Symbol names (default ``"0", "1", ...``); the states carry the same names.
    name : str
        The presentation's label.

    Raises
    ------
    DataError
        Not a square matrix, negative or non-finite entries, rows that do not sum to one.

    Examples
    --------
    >>> from occamlab.processes import build_process
    >>> m = markov_chain([[0.9, 0.1], [0.3, 0.7]])
    >>> bm = build_process("binary-markov", {"p": 0.1, "q": 0.3})
    >>> bool(np.allclose(m.matrices, bm.matrices))
    True
    """
    P = np.asarray(transition, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] < 1:
        raise DataError(f"markov_chain: the transition matrix must be square (k, k), got shape "
                        f"{P.shape}")
    k = P.shape[0]
    T = np.zeros((k, k, k))
    idx = np.arange(k)
    T[idx[None, :], idx[:, None], idx[None, :]] = P  # T[j, i, j] = P[i, j]
    names = tuple(str(s) for s in symbols) if symbols is not None else None
    return Presentation(T, symbols=names or (), states=names or (), name=name,
                        params={"symbols": k})


def _successors(p: Presentation) -> np.ndarray:
    """``succ[s, x]``: the state after emitting ``x`` from ``s`` (-1 where ``x`` is impossible)."""
    T = p.matrices
    has = T.sum(axis=2) > 0  # (X, S)
    return np.where(has.T, T.argmax(axis=2).T, -1)


def _joint_chain(p: Presentation, q: Presentation) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The pairs (p-state, q-state) reachable from ``pi_p x pi_q`` along ``p``'s symbols, and the
    pair-to-pair transition weights. A symbol that ``q`` forbids in its state has no edge (that
    start of ``q``'s predictor is ruled out by the data), so rows may sum to less than one."""
    sp, sq = _successors(p), _successors(q)
    ep = p.emission_probabilities
    pairs = [(int(s), int(r)) for s in np.flatnonzero(p.stationary_distribution() > 0)
             for r in np.flatnonzero(q.stationary_distribution() > 0)]
    index = {pair: i for i, pair in enumerate(pairs)}
    edges: list[tuple[int, int, float]] = []
    i = 0
    while i < len(pairs):
        s, r = pairs[i]
        for x in np.flatnonzero(ep[s] > 0):
            if sq[r, x] < 0:
                continue
            nxt = (int(sp[s, x]), int(sq[r, x]))
            if nxt not in index:
                index[nxt] = len(pairs)
                pairs.append(nxt)
            edges.append((i, index[nxt], float(ep[s, x])))
        i += 1
    M = np.zeros((len(pairs), len(pairs)))
    for a, b, w in edges:
        M[a, b] += w
    return pairs, M


def _surviving_class(M: np.ndarray) -> np.ndarray | None:
    """The one class of pairs that is closed and never meets a forbidden symbol (rows sum to one
    inside it); ``None`` when there is none (``q`` forbids some of ``p``'s sequences from every
    start: an infinite rate)."""
    n_comp, lab = connected_components(csr_matrix(M > 0), directed=True, connection="strong")
    src, dst = np.nonzero(M > 0)
    leaves = np.zeros(n_comp, dtype=bool)
    leaves[lab[src][lab[src] != lab[dst]]] = True
    closed = [c for c in (np.flatnonzero(lab == k) for k in range(n_comp) if not leaves[k])
              if np.allclose(M[np.ix_(c, c)].sum(axis=1), 1.0, atol=1e-12)]
    if len(closed) > 1:
        raise DataError(f"the joint chain of the two presentations has {len(closed)} closed "
                        "classes: the second process's state is not determined by the first's "
                        "sequences, and its divergence rate is not computed exactly here")
    return closed[0] if closed else None


def kl_divergence_rate(p: Presentation, q: Presentation) -> float:
    """The Kullback-Leibler divergence rate ``D(p || q)`` in bits per symbol (see the module doc).

    Exact for unifilar presentations when ``q``'s state is eventually determined by ``p``'s
    sequences (every Markov chain, of any order, and every synchronizing unifilar presentation):
    the pairs of states that never meet a symbol ``q`` forbids then form one closed class.
    ``inf`` when there is no such class: from every state, ``q`` forbids some of ``p``'s
    sequences. Multiply by ``ln 2`` for nats: it is then the excess log-loss, per
    symbol, of ``q``'s exact predictor on data from ``p`` over ``p``'s own (whose loss is ``p``'s
    entropy rate).

    Parameters
    ----------
    p, q : Presentation
        Unifilar presentations over the same symbols (same names, same order); ``p`` ergodic.

    Returns
    -------
    float
        ``D(p || q) >= 0`` in bits per symbol (0 when the processes are equal).

    Raises
    ------
    ConfigError
        The symbols differ, or a presentation is not unifilar.
    DataError
        ``p`` or ``q`` has no unique stationary law, or ``q``'s state is not determined by
        ``p``'s sequences (more than one closed class of state pairs).

    Examples
    --------
    >>> from occamlab.processes import build_process
    >>> p = build_process("binary-markov", {"p": 0.2, "q": 0.2})
    >>> round(kl_divergence_rate(p, p), 12)
    0.0
    >>> q = build_process("iid", {"p": 0.5})
    >>> round(kl_divergence_rate(p, q), 6)  # 1 bit minus p's entropy rate h(0.2)
    0.278072
    """
    if p.symbols != q.symbols:
        raise ConfigError(f"kl_divergence_rate: the processes have different symbols ({p.symbols} "
                          f"and {q.symbols}); both must use the same alphabet in the same order")
    for name, pres in (("p", p), ("q", q)):
        if not pres.is_unifilar():
            raise ConfigError(f"kl_divergence_rate: {name} ({pres.name!r}) is not unifilar; the "
                              "exact rate is computed for unifilar presentations only")
    pairs, M = _joint_chain(p, q)
    c = _surviving_class(M)
    if c is None:
        return float("inf")
    pi = stationary_of(M[np.ix_(c, c)])
    ep, eq = p.emission_probabilities, q.emission_probabilities
    total = 0.0
    for w, k in zip(pi, c, strict=True):
        s, r = pairs[k]
        x = ep[s] > 0  # q allows every one of them inside the surviving class
        total += w * float(np.sum(ep[s][x] * np.log2(ep[s][x] / eq[r][x])))
    return float(max(total, 0.0))
