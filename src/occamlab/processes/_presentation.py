"""Hidden Markov presentations of stationary processes: labeled transition matrices.

Convention (REFERENCE.md): ``T[x][i, j] = Pr(emit x, go to state j | in state i)``. The sum
``T = sum_x T[x]`` is the state-to-state transition matrix, row-stochastic.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from occamlab.errors import ConfigError, DataError

__all__ = ["Presentation", "entropy_bits", "DEFAULT_ATOL"]

#: Default absolute tolerance for validating probabilities (row sums, negativity).
DEFAULT_ATOL = 1e-9


def entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-sum p log2 p`` along ``axis`` (zero terms contribute 0), in bits."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


@dataclass(frozen=True, eq=False)
class Presentation:
    """An edge-emitting hidden Markov model with named symbols and states.

    Parameters
    ----------
    matrices : array_like, shape (n_symbols, n_states, n_states)
        ``matrices[x][i, j] = Pr(emit symbol x and go to state j | state i)``.
    symbols, states : sequences of str, optional
        Names; default ``"0", "1", ...`` and ``"A", "B", ...``.
    name : str
        A label used in reports.
    params : mapping
        The parameters the presentation was built from (for the record).
    atol : float
        Tolerance for negativity and row sums (default 1e-9).

    Raises
    ------
    DataError
        Negative entries, rows of ``sum_x T[x]`` that do not sum to one (the row and its sum are
        named), mismatched shapes, duplicate names.

    Examples
    --------
    >>> golden = Presentation([[[0, 0.5], [0, 0]], [[0.5, 0], [1, 0]]], symbols=["0", "1"])
    >>> round(float(golden.word_probability("11")), 6)
    0.333333
    """

    matrices: Any
    symbols: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)
    atol: float = DEFAULT_ATOL

    def __post_init__(self) -> None:
        try:
            T = np.array(self.matrices, dtype=float, copy=True)
        except (TypeError, ValueError) as exc:
            msg = f"transition matrices of {self.name!r} are not numeric: {exc}"
            raise DataError(msg) from None
        if T.ndim != 3 or T.shape[1] != T.shape[2] or T.shape[0] < 1 or T.shape[1] < 1:
            raise DataError(
                f"transition matrices of {self.name!r} must have shape (n_symbols, n_states, "
                f"n_states) with square matrices, got shape {T.shape}"
            )
        if not np.all(np.isfinite(T)):
            raise DataError(f"transition matrices of {self.name!r} contain NaN or infinity")
        if not (self.atol > 0):
            raise ConfigError(f"atol must be positive, got {self.atol}")
        if T.min() < -self.atol:
            x, i, j = np.unravel_index(int(np.argmin(T)), T.shape)
            raise DataError(
                f"negative entry {T[x, i, j]:.6g} in {self.name!r} at symbol {x}, row {i}, "
                f"column {j}: transition probabilities must be >= 0"
            )
        T = np.clip(T, 0.0, None)
        sums = T.sum(axis=(0, 2))
        bad = np.flatnonzero(np.abs(sums - 1.0) > self.atol)
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"row {row} of sum_x T[x] in {self.name!r} sums to {sums[row]:.12g}, not 1 "
                f"(tolerance {self.atol:g}); {bad.size} bad row(s)"
            )
        T /= sums[None, :, None]
        T.setflags(write=False)
        n_sym, n = T.shape[0], T.shape[1]
        syms = tuple(str(s) for s in self.symbols) or tuple(str(i) for i in range(n_sym))
        sts = tuple(str(s) for s in self.states) or tuple(_state_name(i) for i in range(n))
        for what, names, want in (("symbols", syms, n_sym), ("states", sts, n)):
            if len(names) != want:
                raise DataError(f"{self.name!r} has {want} {what} but {len(names)} names {names}")
            if len(set(names)) != len(names):
                raise DataError(f"duplicate {what} names in {self.name!r}: {names}")
        object.__setattr__(self, "matrices", T)
        object.__setattr__(self, "symbols", syms)
        object.__setattr__(self, "states", sts)
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "_cache", {})

    # -- shape ---------------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return int(self.matrices.shape[1])

    @property
    def n_symbols(self) -> int:
        return int(self.matrices.shape[0])

    @property
    def transition_matrix(self) -> np.ndarray:
        """``T = sum_x T[x]``, shape (n_states, n_states)."""
        return self.matrices.sum(axis=0)

    @property
    def emission_probabilities(self) -> np.ndarray:
        """``Pr(x | state)``, shape (n_states, n_symbols)."""
        return self.matrices.sum(axis=2).T

    # -- structure -----------------------------------------------------------------------------
    def is_irreducible(self) -> bool:
        """True when the state graph of ``T`` is strongly connected (one recurrent class)."""
        n_comp, _ = connected_components(
            csr_matrix(self.transition_matrix > 0), directed=True, connection="strong"
        )
        return bool(n_comp == 1)

    def is_unifilar(self) -> bool:
        """True when each (state, symbol) has at most one successor state with positive weight."""
        return bool(np.all((self.matrices > 0).sum(axis=2) <= 1))

    def closed_classes(self) -> list[np.ndarray]:
        """The closed (recurrent) classes of the state graph, as arrays of state indices."""
        P = self.transition_matrix > 0
        n_comp, lab = connected_components(csr_matrix(P), directed=True, connection="strong")
        src, dst = np.nonzero(P)
        leaves = np.zeros(n_comp, dtype=bool)
        leaves[lab[src][lab[src] != lab[dst]]] = True
        return [np.flatnonzero(lab == c) for c in range(n_comp) if not leaves[c]]

    def stationary_distribution(self) -> np.ndarray:
        """The stationary law ``pi = pi T``, shape (n_states,).

        Solved exactly as the null space of ``(T - I)^T`` augmented with ``sum(pi) = 1`` on the
        presentation's single closed class (transient states get probability 0).

        Raises
        ------
        DataError
            When the state graph has more than one closed class: the process is not ergodic and
            has no unique stationary law (the classes are named).
        """
        cache = self._cache  # type: ignore[attr-defined]
        if "pi" not in cache:
            if self.is_irreducible():
                cache["pi"] = stationary_of(self.transition_matrix)
            else:
                closed = self.closed_classes()
                if len(closed) != 1:
                    names = "; ".join("{" + ", ".join(self.states[i] for i in c) + "}"
                                      for c in closed)
                    raise DataError(
                        f"{self.name!r} is not ergodic: its state graph has {len(closed)} closed "
                        f"classes ({names}), so it has no unique stationary distribution"
                    )
                c = closed[0]
                pi = np.zeros(self.n_states)
                pi[c] = stationary_of(self.transition_matrix[np.ix_(c, c)])
                cache["pi"] = pi
        return cache["pi"].copy()

    def recurrent_part(self) -> Presentation:
        """This presentation without its transient states (itself when irreducible)."""
        pi = self.stationary_distribution()
        if self.is_irreducible():
            return self
        keep = np.flatnonzero(pi > 0)
        return Presentation(
            self.matrices[:, keep][:, :, keep], symbols=self.symbols,
            states=tuple(self.states[i] for i in keep), name=self.name, params=self.params,
            atol=self.atol,
        )

    def state_entropy(self) -> float:
        """``H[pi]`` in bits: the generative complexity of this presentation."""
        return float(entropy_bits(self.stationary_distribution()))

    # -- words ---------------------------------------------------------------------------------
    def symbol_index(self, word: str | Sequence[Any]) -> list[int]:
        """Turn a word (string of one-character symbols, or a sequence of names) into indices."""
        items = list(word) if isinstance(word, str) else [str(s) for s in word]
        lookup = {s: i for i, s in enumerate(self.symbols)}
        out = []
        for s in items:
            if s not in lookup:
                raise ConfigError(f"symbol {s!r} is not one of {self.name!r}'s {self.symbols}")
            out.append(lookup[s])
        return out

    def word_probability(self, word: str | Sequence[Any]) -> float:
        """``Pr(w) = pi T[w_0] ... T[w_{L-1}] 1`` under the stationary law."""
        v = self.stationary_distribution()
        for x in self.symbol_index(word):
            v = v @ self.matrices[x]
        return float(v.sum())

    def word_probabilities(self, length: int) -> np.ndarray:
        """Probabilities of all words of ``length`` in lexicographic order of symbol indices.

        Returns an array of shape ``(n_symbols,) * length`` (``[x0, x1, ...]``).
        """
        if length < 0:
            raise ConfigError(f"word length must be >= 0, got {length}")
        v = self.stationary_distribution()[None, :]  # (W, n)
        for _ in range(length):
            v = np.einsum("wi,xij->wxj", v, self.matrices).reshape(-1, self.n_states)
        return v.sum(axis=1).reshape((self.n_symbols,) * length)

    def words(self, length: int) -> list[str]:
        """Names of the words of ``length`` in the order of :meth:`word_probabilities`."""
        return ["".join(w) for w in itertools.product(self.symbols, repeat=length)]

    # -- transforms ----------------------------------------------------------------------------
    def reverse(self) -> Presentation:
        """The time-reversed presentation ``R[x] = D^-1 T[x]^T D`` with ``D = diag(pi)``.

        It generates the reversed process: ``Pr_R(w) = Pr(reversed w)``. Transient states are
        dropped first.
        """
        rec = self.recurrent_part()
        pi = rec.stationary_distribution()
        R = rec.matrices.transpose(0, 2, 1) * pi[None, None, :] / pi[None, :, None]
        return Presentation(
            R, symbols=rec.symbols, states=rec.states, name=f"{self.name} (reversed)",
            params=self.params, atol=self.atol,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``{"name", "symbols", "states", "matrices", "params"}``."""
        from occamlab._render import jsonable

        return {
            "name": self.name, "symbols": list(self.symbols), "states": list(self.states),
            "matrices": self.matrices.tolist(), "params": jsonable(dict(self.params)),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Presentation:
        return cls(
            d["matrices"], symbols=tuple(d.get("symbols", ())), states=tuple(d.get("states", ())),
            name=str(d.get("name", "custom")), params=dict(d.get("params", {})),
        )

    def __repr__(self) -> str:
        return (
            f"Presentation(name={self.name!r}, n_states={self.n_states}, "
            f"symbols={self.symbols}, params={dict(self.params)})"
        )


def stationary_of(P: np.ndarray) -> np.ndarray:
    """Stationary row vector of an irreducible row-stochastic matrix ``P``: ``pi P = pi``."""
    n = P.shape[0]
    A = np.vstack([(P - np.eye(n)).T, np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _state_name(i: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if i < 26:
        return letters[i]
    return f"S{i}"
