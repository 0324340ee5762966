"""Causal-state splitting reconstruction (CSSR) of a unifilar machine from symbol counts.

Shalizi & Klinkner (2004), "Blind construction of optimal nonlinear recursive predictors for
discrete sequences" (UAI; arXiv:cs/0406011), with one documented change to the recursion step.
Written from the paper; no code of other implementations is used.

Histories are words ``w = x_{t-L} .. x_{t-1}`` encoded as integers in base ``k`` with the oldest
symbol as the most significant digit, so prepending an older symbol ``a`` to a word of length L is
``a * k**L + w`` and appending the next symbol ``b`` to a word of length L (keeping the last L) is
``(w * k + b) mod k**L``. All counts come from one ``np.unique``/``np.bincount`` pass per length.

1. **Counts.** ``N(w, b)`` for every observed history ``w`` of length ``0 .. L_max`` and next
   symbol ``b``; for the histories of length ``L_max`` also the counts of the next ``m`` symbols
   (``m = future_length``). Windows never cross the boundary between two sequences of a batch.
2. **Sufficiency (homogenization).** One state holds the empty history. For ``L = 0 .. L_max-1``
   every observed child ``a w`` of every history ``w`` of length ``L`` is tested against the state
   of ``w``: the null hypothesis is that ``Pr(X | a w)`` equals the state's pooled next-symbol law
   (Pearson's chi-squared test of homogeneity of the 2 x k table of counts, degrees of freedom =
   symbols seen in either row minus one; S&K use chi-squared or Kolmogorov-Smirnov, we use
   chi-squared, or the likelihood-ratio G test with ``test="g"``). Not rejected at level ``alpha``: the child joins the
   parent's state. Rejected: it joins the other state with the largest p-value above ``alpha``, or
   starts a new state. Pooled counts are updated as histories join.
3. **Recursion (determinization).** On the histories of length ``L_max`` the successor of ``h`` on
   ``b`` is the history made of the last ``L_max`` symbols of ``h b``. A state whose histories move
   to different states on some ``b`` is split, *but only when the histories that disagree also
   predict differently*: the group moving to each minority successor is split off when Pearson's
   chi-squared test rejects (at ``alpha``) that its distribution of the next ``m`` symbols equals
   that of the group moving to the majority successor (by count). Otherwise its members follow the
   majority. This is our change to S&K's step, and it is what recovers processes of infinite Markov
   order (even process, RRXOR): there a synchronized history whose oldest symbol carried the
   synchronization maps, after truncation, to a non-synchronized history ("1^L" for the even
   process); strict determinization splits the state for it and the spurious states cascade.
   The truncated successor predicts the same futures as its state, so the test leaves it alone.
4. **Machine.** ``Pr(b | s)`` from the pooled counts of the state's histories; the successor on
   ``b`` is the majority successor of its histories (weighted by ``N(h, b)``). Transient states are
   removed: the result is the closed class of the state graph (the largest by count when there
   are several, with a note).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import chdtrc

from occamlab.errors import DataError
from occamlab.processes._presentation import Presentation

__all__ = ["SuffixCounts", "suffix_counts", "cssr", "CSSRMachine", "homogeneity_pvalues"]

_BINCOUNT_LIMIT = 1 << 22  # dense bincount over k**W codes below this, np.unique above


@dataclass(frozen=True, eq=False)
class SuffixCounts:
    """Counts of every observed history (internal value).

    ``codes[L]`` are the sorted codes of the observed histories of length L, ``next[L]`` their
    next-symbol counts, shape ``(len(codes[L]), k)``. ``future`` are the counts of the next ``m``
    symbols after each history of length ``L_max`` as triples ``(row into codes[L_max],
    future code, count)``.
    """

    k: int
    max_history: int
    future_length: int
    codes: list[np.ndarray]
    next: list[np.ndarray]
    future_row: np.ndarray
    future_code: np.ndarray
    future_count: np.ndarray


def _window_codes(X: np.ndarray, k: int, width: int) -> np.ndarray:
    """Codes of every window of ``width`` symbols inside each row of ``X`` (flattened)."""
    n = X.shape[1] - width + 1
    c = np.zeros((X.shape[0], n), dtype=np.int64)
    for j in range(width):
        c *= k
        c += X[:, j:j + n]
    return c.ravel()


def _count(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(unique codes, counts) of an int64 array whose values lie below ``size``."""
    if size <= _BINCOUNT_LIMIT:
        full = np.bincount(codes, minlength=size)
        u = np.flatnonzero(full)
        return u, full[u]
    u, c = np.unique(codes, return_counts=True)
    return u, c


def suffix_counts(X: np.ndarray, k: int, max_history: int, future_length: int) -> SuffixCounts:
    """Count histories of length ``0 .. max_history`` with their next symbol, and the next
    ``future_length`` symbols after the longest histories, in the rows of ``X`` (B, T)."""
    X = np.asarray(X, dtype=np.int64)
    codes, nexts = [], []
    for L in range(max_history + 1):
        u, c = _count(_window_codes(X, k, L + 1), k ** (L + 1))
        hist, sym = np.divmod(u, k)
        h_codes, row = np.unique(hist, return_inverse=True)
        table = np.zeros((h_codes.size, k), dtype=np.int64)
        table[row.ravel(), sym] = c
        codes.append(h_codes)
        nexts.append(table)
    m = future_length
    u, c = _count(_window_codes(X, k, max_history + m), k ** (max_history + m))
    hist, fut = np.divmod(u, k ** m)
    row = np.searchsorted(codes[max_history], hist)
    return SuffixCounts(k=k, max_history=max_history, future_length=m, codes=codes, next=nexts,
                        future_row=row, future_code=fut, future_count=c)


def homogeneity_pvalues(row: np.ndarray, others: np.ndarray, test: str = "chi2") -> np.ndarray:
    """p-values of the test of homogeneity of ``row`` (k,) against each row of ``others``
    (m, k): the 2 x k table of counts, expected counts ``E = n_row * column total / n``, dof =
    columns seen in either row - 1. ``test="chi2"``: Pearson's ``sum (O - E)^2 / E``;
    ``test="g"``: the likelihood ratio ``G = 2 sum O ln(O / E)``; both asymptotically
    chi-squared. A table with one column seen (or an empty row) gives p = 1."""
    row = np.asarray(row, dtype=float)[None, :]
    others = np.asarray(others, dtype=float)
    n1 = row.sum()
    n2 = others.sum(axis=1, keepdims=True)
    tot = row + others
    seen = tot > 0
    theta = tot / np.maximum(n1 + n2, 1.0)
    e1, e2 = n1 * theta, n2 * theta
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "g":
            def g(o: np.ndarray, e: np.ndarray) -> np.ndarray:
                return np.where(o > 0, o * np.log(np.where(o > 0, o, 1.0) / np.where(seen, e, 1.0)),
                                0.0)

            stat = 2.0 * np.where(seen, g(row, e1) + g(others, e2), 0.0).sum(axis=1)
        else:
            stat = np.where(seen, (row - e1) ** 2 / np.where(seen, e1, 1.0)
                            + (others - e2) ** 2 / np.where(seen, e2, 1.0), 0.0).sum(axis=1)
    dof = seen.sum(axis=1) - 1
    ok = (dof > 0) & (n1 > 0) & (n2[:, 0] > 0)
    return np.where(ok, chdtrc(np.maximum(dof, 1), stat), 1.0)  # chi-squared survival function


def _sufficiency(sc: SuffixCounts, alpha: float, test: str) -> tuple[list[np.ndarray], np.ndarray]:
    """S&K's homogenization: a state label for every observed history (see the module notes)."""
    k, L_max = sc.k, sc.max_history
    labels = [np.full(c.size, -1, dtype=np.int64) for c in sc.codes]
    labels[0][:] = 0
    morphs = np.zeros((16, k))  # pooled next-symbol counts per state, grown by doubling
    morphs[0] = sc.next[0][0]
    n_states = 1
    for L in range(L_max):
        child_codes = sc.codes[L + 1]
        for i in range(sc.codes[L].size):
            s = int(labels[L][i])
            for a in range(k):
                code = a * k ** L + int(sc.codes[L][i])
                j = int(np.searchsorted(child_codes, code))
                if j >= child_codes.size or child_codes[j] != code:
                    continue
                counts = sc.next[L + 1][j]
                if homogeneity_pvalues(counts, morphs[s:s + 1], test)[0] > alpha:
                    target = s
                else:
                    p = homogeneity_pvalues(counts, morphs[:n_states], test)
                    p[s] = -1.0
                    best = int(np.argmax(p))
                    if p[best] > alpha:
                        target = best
                    else:
                        target = n_states
                        n_states += 1
                        if n_states > morphs.shape[0]:
                            morphs = np.concatenate([morphs, np.zeros_like(morphs)])
                labels[L + 1][j] = target
                morphs[target] += counts
    return labels, morphs[:n_states]


def _pooled_futures(sc: SuffixCounts, rows: np.ndarray) -> np.ndarray:
    mask = np.isin(sc.future_row, rows)
    return np.bincount(sc.future_code[mask], weights=sc.future_count[mask],
                       minlength=sc.k ** sc.future_length)


def _determinize(sc: SuffixCounts, labels: np.ndarray, alpha: float,
                 test: str) -> tuple[np.ndarray, int]:
    """Split states of the longest histories until their transitions are deterministic, up to
    histories whose futures do not differ significantly (see the module notes). Returns the
    labels and the number of splits."""
    k, L = sc.k, sc.max_history
    codes, cnt = sc.codes[L], sc.next[L]
    n = codes.size
    succ = np.full((n, k), -1, dtype=np.int64)
    for b in range(k):
        nxt = (codes * k + b) % k ** L
        j = np.minimum(np.searchsorted(codes, nxt), n - 1)
        succ[:, b] = np.where((codes[j] == nxt) & (cnt[:, b] > 0), j, -1)
    lab = np.unique(labels, return_inverse=True)[1].ravel().astype(np.int64)
    splits = 0
    while True:
        changed = False
        n_lab = int(lab.max()) + 1
        for c in range(n_lab):
            members = np.flatnonzero(lab == c)
            for b in range(k):
                ok = members[succ[members, b] >= 0]
                if ok.size < 2:
                    continue
                target = lab[succ[ok, b]]
                kinds, inv = np.unique(target, return_inverse=True)
                if kinds.size < 2:
                    continue
                mass = np.bincount(inv.ravel(), weights=cnt[ok, b])
                major = int(np.argmax(mass))
                ref = _pooled_futures(sc, ok[inv.ravel() == major])
                split_any = False
                for g in range(kinds.size):
                    if g == major:
                        continue
                    group = ok[inv.ravel() == g]
                    if homogeneity_pvalues(_pooled_futures(sc, group), ref[None, :], test)[0] <= alpha:
                        lab[group] = int(lab.max()) + 1
                        split_any = True
                        splits += 1
                if split_any:
                    changed = True
                    break  # this state changed: look at it again in the next pass
        if not changed:
            return lab, splits


@dataclass(frozen=True, eq=False)
class CSSRMachine:
    """What :func:`cssr` found (internal value): the recurrent machine and diagnostics."""

    presentation: Presentation
    n_candidate_states: int
    n_sufficiency_states: int
    n_histories: int
    n_splits: int
    histories: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _word(code: int, length: int, k: int, names: tuple[str, ...]) -> str:
    digits = []
    for _ in range(length):
        code, d = divmod(code, k)
        digits.append(names[d])
    sep = "" if all(len(s) == 1 for s in names) else " "
    return sep.join(reversed(digits))


def cssr(
    sc: SuffixCounts, *, alpha: float, symbols: tuple[str, ...], test: str = "chi2",
    name: str = "inferred",
    params: dict[str, object] | None = None, n_examples: int = 3,
) -> CSSRMachine:
    """Run sufficiency, recursion and transient removal on counted histories.

    Returns the recurrent unifilar machine with ``Pr(b | s)`` from pooled counts. States are
    ordered by decreasing count (ties by their most frequent history's code), so the result
    depends only on the counts.
    """
    k, L = sc.k, sc.max_history
    labels, morphs = _sufficiency(sc, alpha, test)
    lab, n_splits = _determinize(sc, labels[L], alpha, test)
    codes, cnt = sc.codes[L], sc.next[L].astype(float)
    n = int(lab.max()) + 1
    morph = np.zeros((n, k))
    np.add.at(morph, lab, cnt)
    votes = np.zeros((n, k, n))
    for b in range(k):
        nxt = (codes * k + b) % k ** L
        j = np.minimum(np.searchsorted(codes, nxt), codes.size - 1)
        ok = (codes[j] == nxt) & (cnt[:, b] > 0)
        np.add.at(votes, (lab[ok], b, lab[j[ok]]), cnt[ok, b])
    succ = np.where(votes.sum(axis=2) > 0, np.argmax(votes, axis=2), -1)  # (n, k)
    notes: list[str] = []
    lost = (morph > 0) & (succ < 0)
    if lost.any():
        notes.append(f"{int(lost.sum())} transition(s) seen only at the end of a sequence were "
                     "dropped (no successor history observed)")
        morph = np.where(lost, 0.0, morph)
    T = np.zeros((k, n, n))
    src, sym = np.nonzero(succ >= 0)
    T[sym, src, succ[src, sym]] = morph[src, sym]
    keep_rows = T.sum(axis=(0, 2)) > 0
    # The closed classes of the state graph; transient states go.
    from occamlab.processes._minimize import closed_components

    g_succ = np.where(keep_rows[:, None], succ, -1)
    comps, _ = closed_components(g_succ)
    if not comps:
        raise DataError(f"too few symbols: the {codes.size} histories of length {L} observed "
                        "never return to a state (no recurrent state); give more data or a "
                        "shorter max_history")
    weight = [morph[c].sum() for c in comps]
    order_c = int(np.argmax(weight))
    if len(comps) > 1:
        notes.append(f"the state graph has {len(comps)} closed classes; kept the one with the "
                     f"most counts ({weight[order_c]:.0f} of {sum(weight):.0f})")
    rec = comps[order_c]
    # Order states by count, ties by their most frequent history.
    top = np.full(n, np.iinfo(np.int64).max)
    tot = cnt.sum(axis=1)
    for s in rec:
        mem = np.flatnonzero(lab == s)
        top[s] = codes[mem[np.argmax(tot[mem])]]
    rec = np.array(sorted(rec.tolist(), key=lambda s: (-morph[s].sum(), int(top[s]))))
    sub = T[:, rec][:, :, rec]
    sub = sub / sub.sum(axis=(0, 2))[None, :, None]
    pres = Presentation(sub, symbols=symbols, name=name, params=dict(params or {}))
    examples = []
    for s in rec:
        mem = np.flatnonzero(lab == s)
        best = mem[np.argsort(-tot[mem], kind="stable")[:n_examples]]
        examples.append(tuple(_word(int(codes[h]), L, k, symbols) for h in best))
    return CSSRMachine(
        presentation=pres, n_candidate_states=n, n_sufficiency_states=int(morphs.shape[0]),
        n_histories=int(codes.size), n_splits=n_splits, histories=tuple(examples),
        notes=tuple(notes),
    )
