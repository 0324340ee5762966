"""Epsilon-machine inference from samples: :func:`infer` and :class:`InferenceResult`.

CSSR (Shalizi & Klinkner 2004; see ``_cssr``) finds a recurrent unifilar machine; the library's
exact measures (:func:`analyze`) then give its ``C_mu``, ``h_mu`` and ``E``. Their uncertainty
comes from a moving-block bootstrap: ``K`` resamples of ``ceil(n / l)`` blocks of ``l`` consecutive
symbols drawn with replacement (Kunsch 1989), each block a sequence of its own (no word spans two
blocks), CSSR and the exact measures rerun on each, percentile intervals.

References: C. R. Shalizi and K. L. Klinkner, "Blind construction of optimal nonlinear recursive
predictors for discrete sequences", UAI 2004 (arXiv:cs/0406011). J. P. Crutchfield and
D. P. Feldman, "Regularities unseen, randomness observed", Chaos 13 (2003); J. P. Crutchfield,
C. J. Ellison and J. R. Mahoney, "Time's barbed arrow", PRL 103 (2009) (excess entropy from the
machine). H. R. Kunsch, "The jackknife and the bootstrap for general stationary observations",
Ann. Stat. 17 (1989).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, check_seed
from occamlab.processes._cssr import cssr, suffix_counts
from occamlab.processes._epsilon import DEFAULT_PRECISION
from occamlab.processes._info import ProcessInfo, analyze
from occamlab.processes._presentation import Presentation
from occamlab.processes._symbols import check_symbols, load_symbols

__all__ = ["InferenceResult", "infer"]

_TESTS = ("chi2", "g")


@dataclass(frozen=True)
class InferenceResult(Rendered):
    """An epsilon-machine inferred from samples, its exact measures and bootstrap intervals.

    ``info`` is :func:`analyze` of the inferred machine (the same result type as for a library
    process); ``machine`` is that machine in the library's JSON process format (``name``,
    ``symbols``, ``states``, ``matrices``, ``params``), read back by :meth:`presentation` or, once
    written by :meth:`save_machine`, by ``load_presentation`` and ``occam process info --file``.
    Intervals (``*_ci``) are percentile intervals at ``level`` over ``bootstrap`` moving-block
    resamples of ``block_length`` symbols (``None`` without a bootstrap). Values in bits.
    """

    info: ProcessInfo
    machine: dict[str, Any]
    max_history: int
    alpha: float
    test: str
    future_length: int
    n_symbols: int
    n_sequences: int
    alphabet: tuple[str, ...]
    n_histories: int
    n_candidate_states: int
    state_histories: tuple[tuple[str, ...], ...]
    bootstrap: int
    block_length: int | None
    level: float
    seed: int
    statistical_complexity_ci: tuple[float, float] | None
    entropy_rate_ci: tuple[float, float] | None
    excess_entropy_ci: tuple[float, float] | None
    bootstrap_state_counts: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_states(self) -> int:
        """Number of recurrent states of the inferred machine."""
        return len(self.machine["states"])

    @property
    def statistical_complexity(self) -> float | None:
        return self.info.statistical_complexity

    @property
    def entropy_rate(self) -> float:
        return self.info.entropy_rate

    @property
    def excess_entropy(self) -> float | None:
        return self.info.excess_entropy

    def presentation(self) -> Presentation:
        """The inferred machine as a :class:`Presentation`."""
        return Presentation.from_dict(self.machine)

    def save_machine(self, path: str | os.PathLike[str]) -> str:
        """Write the inferred machine as a JSON process file (atomically); returns the path."""
        from occamlab.processes._library import save_presentation

        return save_presentation(self.presentation(), os.fspath(path))

    def _tables(self) -> list[Table]:
        def ci(v: tuple[float, float] | None) -> Any:
            return "-" if v is None else v

        rows: list[list[Any]] = [
            ["statistical complexity C_mu", self.info.statistical_complexity,
             ci(self.statistical_complexity_ci)],
            ["entropy rate h_mu", self.info.entropy_rate, ci(self.entropy_rate_ci)],
            ["excess entropy E", self.info.excess_entropy, ci(self.excess_entropy_ci)],
            ["causal states", self.n_states, ""],
        ]
        notes = [
            f"CSSR: max_history {self.max_history}, alpha {self.alpha:g}, {self.test} tests, "
            f"recursion futures of {self.future_length} symbols; {self.n_symbols} symbols in "
            f"{self.n_sequences} sequence(s), alphabet {' '.join(self.alphabet)}",
            f"{self.n_histories} histories of length {self.max_history}; "
            f"{self.n_candidate_states} candidate states, {self.n_states} recurrent",
        ]
        if self.bootstrap:
            counts = np.bincount(np.asarray(self.bootstrap_state_counts, dtype=np.int64)) \
                if self.bootstrap_state_counts else np.zeros(0)
            same = int(counts[self.n_states]) if counts.size > self.n_states else 0
            notes.append(f"intervals: {self.level:.0%} percentile, {self.bootstrap} moving-block "
                         f"resamples of {self.block_length} symbols (seed {self.seed}); "
                         f"{same} of {len(self.bootstrap_state_counts)} resamples found "
                         f"{self.n_states} states")
        notes.extend(self.notes)
        head = "interval" if self.bootstrap else "interval (bootstrap=K, --bootstrap K)"
        out = [Table(f"Inferred epsilon-machine ({self.info.name}), bits",
                     ["quantity", "value", head], rows, notes)]
        p = self.presentation()
        pi = p.stationary_distribution()
        T = p.matrices
        srows: list[list[Any]] = []
        for i, s in enumerate(p.states):
            emit = [float(T[x, i].sum()) for x in range(p.n_symbols)]
            nxt = [p.states[int(np.argmax(T[x, i]))] if emit[x] > 0 else "-"
                   for x in range(p.n_symbols)]
            srows.append([s, float(pi[i]), *emit, *nxt,
                          ", ".join(self.state_histories[i]) if i < len(self.state_histories)
                          else ""])
        heads = ["state", "Pr(state)", *[f"Pr({x})" for x in p.symbols],
                 *[f"on {x}" for x in p.symbols], "frequent histories (oldest first)"]
        out.append(Table("Causal states", heads, srows))
        out.append(self.info._tables()[0])
        return out


def _as_symbols(samples: Any) -> tuple[Any, tuple[str, ...] | None]:
    from occamlab.processes._sampling import Samples

    if isinstance(samples, Samples):
        return samples.symbols, tuple(samples.symbol_names)
    if isinstance(samples, str | os.PathLike):
        return load_symbols(samples)
    return samples, None


def _check_settings(max_history: Any, alpha: Any, future_length: Any, bootstrap: Any,
                    level: Any, test: Any, max_depth: Any = None) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if not is_int(max_history) or not 1 <= max_history <= 40:
        raise ConfigError(f"max_history must be an integer in [1, 40], got {max_history!r}")
    if not is_int(future_length) or not 1 <= future_length <= 12:
        raise ConfigError(f"future_length must be an integer in [1, 12], got {future_length!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ConfigError(f"alpha must be a significance level in (0, 1), got {alpha!r}")
    if not is_int(bootstrap) or bootstrap < 0:
        raise ConfigError(f"bootstrap must be an integer >= 0 (resamples), got {bootstrap!r}")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    if test not in _TESTS:
        raise ConfigError(f"test must be one of {_TESTS}, got {test!r}")
    if max_depth is not None and (not is_int(max_depth) or max_depth < 1):
        raise ConfigError(f"max_depth must be a positive integer or None, got {max_depth!r}")


def infer(
    samples: Any,
    *,
    max_history: int = 6,
    alpha: float = 0.001,
    future_length: int = 3,
    test: str = "chi2",
    bootstrap: int = 0,
    block_length: int | None = None,
    level: float = 0.95,
    symbols: Sequence[str] | None = None,
    name: str = "inferred",
    precision: float = DEFAULT_PRECISION,
    max_depth: int | None = None,
    seed: int = 0,
) -> InferenceResult:
    """Infer the epsilon-machine of a process from samples by CSSR; exact measures of the result.

    Causal-state splitting reconstruction (Shalizi & Klinkner 2004) groups histories of up to
    ``max_history`` symbols whose next-symbol laws do not differ at significance ``alpha``, splits
    the groups until transitions are deterministic (a split needs the disagreeing histories to
    predict the next ``future_length`` symbols differently at level ``alpha``) and keeps the
    recurrent states; see ``docs/processes.md`` for the algorithm and its failure modes. On the
    inferred machine, with stationary law ``pi``::

        C_mu = -sum_s pi_s log2 pi_s,   h_mu = sum_s pi_s H[X | s],
        E = I[past; future] = sum_{L>=1} (h(L) - h_mu)   (Crutchfield & Feldman 2003)

    computed exactly by :func:`analyze` (E by the spectral formula over mixed states).

    Parameters
    ----------
    samples : array_like of int, Samples, or path
        Symbol indices, one sequence (1-D) or a batch of sequences (2-D, one per row); a
        :class:`Samples`; or a ``.npz`` file from ``save_samples`` / ``.npy`` integer array.
    max_history : int
        ``L_max``, the longest history (default 6); it should reach the process's
        synchronization length (histories grow as ``k**L_max``, their counts shrink as much).
    alpha : float
        Significance level of every test (default 0.001).
    future_length : int
        Symbols of future compared before a recursion split (default 3).
    test : {"chi2", "g"}
        Homogeneity test of every split: Pearson's chi-squared (default) or the
        likelihood-ratio G test.
    bootstrap : int
        Moving-block bootstrap resamples ``K`` for intervals on ``C_mu``, ``h_mu``, ``E``
        (default 0: none).
    block_length : int, optional
        Bootstrap block length; default ``max(ceil(n**(1/3)), 4 (max_history + future_length))``
        with ``n`` the symbols per sequence, at most the sequence length.
    level : float
        Coverage of the percentile intervals (default 0.95).
    symbols, name :
        Alphabet names (default: a ``.npz`` file's, else ``"0" .. max``); the machine's name.
    precision : float
        Precision (bits) of ``E`` when the inferred machine's mixed states do not close (it
        synchronizes only asymptotically, as estimated probabilities make RRXOR's): see
        :func:`analyze`. Bootstrap resamples use ``max(precision, 1e-4)``, far below their spread.
    max_depth : int, optional
        Cap on the depth of that mixed-state search (:func:`analyze`), for the fit and every
        resample. ``C_mu`` and ``h_mu`` of the inferred (unifilar) machine do not depend on it;
        ``E`` becomes a lower bound (with bounds in ``info``) when the search stops short. A
        machine inferred from an imperfect source (a trained model's samples) can have many
        states that synchronize only asymptotically, where the search otherwise dominates the
        time (a 79-state machine: 17 s uncapped, well under a second at depth 8).
    seed : int
        Seed of the bootstrap (keyword only; the inference itself is deterministic).

    Returns
    -------
    InferenceResult

    Raises
    ------
    ConfigError
        Settings out of range.
    DataError
        Bad samples: not integers, negative, outside the alphabet, too short for
        ``max_history + future_length``, one symbol only, or an unreadable file.

    Examples
    --------
    >>> from occamlab.processes import build_process, sample
    >>> s = sample(build_process("golden-mean"), 100_000, seed=1)
    >>> r = infer(s, max_history=4)
    >>> r.n_states, round(r.statistical_complexity, 2)
    (2, 0.92)
    """
    _check_settings(max_history, alpha, future_length, bootstrap, level, test, max_depth)
    seed = check_seed(seed)
    X, alphabet = _symbols(samples, symbols, max_history + future_length)
    k = len(alphabet)
    params: dict[str, object] = {"max_history": int(max_history), "alpha": float(alpha)}
    fit = _fit(X, k, alphabet, max_history, alpha, future_length, test, name, params)
    info = analyze(fit.presentation, precision=precision, max_depth=max_depth)
    B, T = X.shape
    ci: list[tuple[float, float] | None] = [None, None, None]
    counts: tuple[int, ...] = ()
    ell: int | None = None
    notes = list(fit.notes)
    if max_depth is not None and not info.excess_entropy_exact:
        notes.append(f"E: mixed-state search capped at depth {max_depth} (E is a lower bound)")
    if bootstrap:
        ell = _block_length(block_length, T, max_history, future_length)
        ci, counts, failed = _intervals(X, k, alphabet, (max_history, alpha, future_length, test),
                                        bootstrap, ell, level, seed, max(precision, 1e-4),
                                        max_depth)
        if failed:
            notes.append(f"{failed} bootstrap resample(s) gave no machine and were left out")
    return InferenceResult(
        info=info, machine=fit.presentation.to_dict(), max_history=int(max_history),
        alpha=float(alpha), test=test, future_length=int(future_length), n_symbols=int(X.size),
        n_sequences=int(B), alphabet=alphabet, n_histories=fit.n_histories,
        n_candidate_states=fit.n_candidate_states, state_histories=fit.histories,
        bootstrap=int(bootstrap), block_length=ell, level=float(level), seed=seed,
        statistical_complexity_ci=ci[0], entropy_rate_ci=ci[1], excess_entropy_ci=ci[2],
        bootstrap_state_counts=counts, notes=tuple(notes),
    )


def _symbols(samples: Any, symbols: Sequence[str] | None, span: int
             ) -> tuple[np.ndarray, tuple[str, ...]]:
    """The checked symbol array ``(sequences, length)`` and alphabet of ``samples``; histories
    plus futures of ``span`` symbols must fit a 64-bit code."""
    raw, file_names = _as_symbols(samples)
    names = tuple(symbols) if symbols is not None else file_names
    X, alphabet = check_symbols(raw, names=names, min_length=span + 1)
    if span * math.log2(max(len(alphabet), 2)) > 62:
        raise ConfigError(f"max_history + future_length = {span} is too long for "
                          f"{len(alphabet)} symbols (histories are coded in 64-bit integers)")
    return X, alphabet


def _block_length(block_length: int | None, T: int, max_history: int, future_length: int) -> int:
    """The bootstrap block: ``max(ceil(T^(1/3)), 4 (L + m))`` unless given, at most ``T``."""
    min_len = max_history + future_length + 1
    ell = block_length if block_length is not None else max(
        math.ceil(T ** (1 / 3)), 4 * (max_history + future_length))
    ell = min(int(ell), T)
    if isinstance(ell, bool) or ell < min_len:
        raise ConfigError(f"block_length must be at least max_history + future_length + 1 = "
                          f"{min_len}, got {block_length!r}")
    return ell


def _intervals(X: np.ndarray, k: int, alphabet: tuple[str, ...], settings: tuple[Any, ...],
               bootstrap: int, ell: int, level: float, seed: int, precision: float,
               max_depth: int | None = None) -> tuple[list[tuple[float, float] | None], tuple[int, ...], int]:
    """Percentile intervals of ``(C_mu, h_mu, E)`` over moving-block bootstrap refits, the state
    count of each refit, and how many refits gave no machine."""
    max_history, alpha, future_length, test = settings
    vals, counts, failed = _bootstrap(X, k, alphabet, max_history, alpha, future_length, test,
                                      bootstrap, ell, seed, precision, max_depth)
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    ci: list[tuple[float, float] | None] = [None, None, None]
    for j in range(3):
        col = vals[:, j][np.isfinite(vals[:, j])]
        if col.size:
            ci[j] = (float(np.percentile(col, lo)), float(np.percentile(col, hi)))
    return ci, counts, failed


def _fit(X: np.ndarray, k: int, alphabet: tuple[str, ...], L: int, alpha: float, m: int,
         test: str, name: str, params: dict[str, object]) -> Any:
    sc = suffix_counts(X, k, L, m)
    return cssr(sc, alpha=alpha, symbols=alphabet, test=test, name=name, params=params)


def _bootstrap(X: np.ndarray, k: int, alphabet: tuple[str, ...], L: int, alpha: float, m: int,
               test: str, K: int, ell: int, seed: int, precision: float,
               max_depth: int | None = None) -> tuple[np.ndarray, tuple[int, ...], int]:
    """(K, 3) array of (C_mu, h_mu, E) over moving-block resamples, state counts, failures."""
    rng = np.random.default_rng(seed)
    B, T = X.shape
    n_blocks = math.ceil(B * T / ell)
    vals = np.full((K, 3), np.nan)
    counts: list[int] = []
    failed = 0
    offsets = np.arange(ell)
    for r in range(K):
        rows = rng.integers(B, size=n_blocks)
        starts = rng.integers(T - ell + 1, size=n_blocks)
        Xb = X[rows[:, None], starts[:, None] + offsets[None, :]]  # (n_blocks, ell)
        try:
            fit = _fit(Xb, k, alphabet, L, alpha, m, test, "resample", {})
            a = analyze(fit.presentation, precision=precision, max_depth=max_depth)
        except DataError:
            failed += 1
            continue
        counts.append(fit.presentation.n_states)
        vals[r] = [a.statistical_complexity if a.statistical_complexity is not None else np.nan,
                   a.entropy_rate,
                   a.excess_entropy if a.excess_entropy is not None else np.nan]
    return vals, tuple(counts), failed
