"""Seeded, vectorized sampling of sequences, hidden states and belief states.

A batch of ``B`` sequences advances together: at each step every chain draws one joint
(symbol, next state) outcome from its state's row of ``T`` by inverse-CDF on one uniform draw, so
the cost per step is a few numpy operations on arrays of length ``B``.

Few long sequences are cut into ``K`` blocks that run side by side: each block is simulated from
every possible start state (``n`` chains per block), then the blocks are stitched in order, each
taking the trajectory that starts where the previous one ended. Each block's trajectory given its
start state depends only on that block's own uniforms, so the stitched sequence has exactly the
law of one long run. Beliefs are computed afterwards by the same blocking: normalized block
products of ``T[x]``, a scan over blocks for the belief at each block's start, then the forward
recursion inside all blocks at once.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_memory, check_seed
from occamlab.processes._presentation import Presentation

__all__ = ["Samples", "sample", "SampleFile", "save_samples"]


@dataclass(frozen=True, eq=False)
class Samples:
    """Sampled sequences (an array bundle, saved with ``np.savez``).

    Attributes
    ----------
    symbols : (B, L) uint8/uint16 array
        Symbol indices (names in ``symbol_names``).
    states : (B, L + 1) array
        Hidden states of the presentation; ``states[:, t]`` emits ``symbols[:, t]``.
    beliefs : (B, L, n_states) float array or None
        ``beliefs[b, t] = Pr(S_{t+1} | x_0 .. x_t)``: the mixed state after reading symbol t,
        starting from the stationary law (what a transformer's residual stream is probed for).
    """

    symbols: np.ndarray
    states: np.ndarray
    beliefs: np.ndarray | None
    symbol_names: tuple[str, ...]
    state_names: tuple[str, ...]
    seed: int | None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "symbols": self.symbols, "states": self.states,
            "symbol_names": np.array(self.symbol_names), "state_names": np.array(self.state_names),
        }
        if self.beliefs is not None:
            out["beliefs"] = self.beliefs
        return out


def _int_dtype(n: int) -> type:
    return np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.int64


def sample(
    presentation: Presentation,
    length: int,
    *,
    batch: int = 1,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    beliefs: bool = False,
    blocks: int | None = None,
) -> Samples:
    """Sample ``batch`` sequences of ``length`` symbols from the stationary process.

    Parameters
    ----------
    presentation : Presentation
        Presentation with a single closed class; initial states follow its stationary law.
    length : int
        Symbols per sequence (>= 1).
    batch : int
        Number of independent sequences (>= 1).
    seed, rng :
        Randomness (keyword only); ``rng`` wins when both are given.
    beliefs : bool
        Also return the belief state after each symbol (float32 when there are more than
        10^7 entries, float64 otherwise).
    blocks : int, optional
        Blocks per sequence (see the module notes); default: 1 for large batches, enough blocks
        for about 1,024 rows when the batch is small and sequences are long.

    Returns
    -------
    Samples
    """
    if length < 1:
        raise ConfigError(f"length must be >= 1, got {length}")
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    if blocks is not None and blocks < 1:
        raise ConfigError(f"blocks must be >= 1, got {blocks}")
    gen = rng if rng is not None else np.random.default_rng(check_seed(seed))
    T = presentation.matrices
    A, n = T.shape[0], T.shape[1]
    pi = presentation.stationary_distribution()
    if blocks is None:
        blocks = 1 if batch >= 512 or length < 4096 else max(1, min(length // 256,
                                                                    -(-1024 // batch)))
    K = min(blocks, length)
    Lb = -(-length // K)  # block length
    R = batch * K
    n_start = n if K > 1 else 1  # chains per block: every start state, unless not blocked
    per_row = np.dtype(_int_dtype(A)).itemsize + np.dtype(_int_dtype(n)).itemsize
    check_memory(R * n_start * Lb * per_row + batch * (length + 1) * per_row
                 + (batch * length * n * 8 if beliefs else 0),
                 what=f"sampling {batch} x {length} symbols")
    # Joint outcomes k = x * n + j; cumulative rows per state: (n, A*n).
    cum = np.cumsum(T.transpose(1, 0, 2).reshape(n, A * n), axis=1)
    cum[:, -1] = np.inf  # guards against round-off at the top
    start = np.minimum(np.searchsorted(np.cumsum(pi), gen.random(batch), side="right"), n - 1)
    state = np.tile(np.arange(n), R) if K > 1 else start.copy()
    xs: np.ndarray = np.empty((R * n_start, Lb), dtype=_int_dtype(A))
    ss: np.ndarray = np.empty((R * n_start, Lb), dtype=_int_dtype(n))
    for t in range(Lb):
        u = gen.random(R)
        if n_start > 1:
            u = np.repeat(u, n_start)
        # Outcome = number of cumulative entries <= u, per chain.
        k = (cum[state] <= u[:, None]).sum(axis=1)
        x = k // n
        state = k - x * n
        xs[:, t] = x
        ss[:, t] = state
    if K > 1:
        ends = ss[:, -1].reshape(batch, K, n)
        chosen = np.empty((batch, K), dtype=np.int64)
        cur = start
        for b in range(K):  # stitch: each block starts where the previous one ended
            chosen[:, b] = cur
            cur = ends[np.arange(batch), b, cur]
        rows = (np.arange(batch)[:, None] * K + np.arange(K)[None, :]) * n + chosen
        xs, ss = xs[rows.ravel()], ss[rows.ravel()]
    symbols = xs.reshape(batch, K * Lb)[:, :length]
    states: np.ndarray = np.empty((batch, length + 1), dtype=_int_dtype(n))
    states[:, 0] = start
    states[:, 1:] = ss.reshape(batch, K * Lb)[:, :length]
    bel = _beliefs(T, pi, symbols, K) if beliefs else None
    return Samples(
        symbols=np.ascontiguousarray(symbols), states=states, beliefs=bel,
        symbol_names=presentation.symbols, state_names=presentation.states,
        seed=None if rng is not None else seed,
    )


def _beliefs(T: np.ndarray, pi: np.ndarray, symbols: np.ndarray, K: int) -> np.ndarray:
    """``Pr(S_{t+1} | x_0..x_t)`` for every position, by blocks (see the module notes)."""
    B, L = symbols.shape
    A, n = T.shape[0], T.shape[1]
    Lb = -(-L // K)
    T_ext = np.concatenate([T, np.eye(n)[None]])  # index A: identity, pads the last block
    xs = np.full((B, K * Lb), A, dtype=np.int64)
    xs[:, :L] = symbols
    xs = xs.reshape(B, K, Lb)
    fdt = np.float32 if B * L * n > 10**7 else np.float64
    eta = np.empty((B, K, n))
    eta[:, 0] = pi
    if K > 1:
        Q = np.broadcast_to(np.eye(n), (B, K, n, n)).copy()
        for t in range(Lb):  # normalized block products of T[x]
            Q = Q @ T_ext[xs[:, :, t]]
            Q /= Q.max(axis=(2, 3), keepdims=True)
        for b in range(K - 1):  # belief at each block's start
            v = np.einsum("bi,bij->bj", eta[:, b], Q[:, b])
            eta[:, b + 1] = v / v.sum(axis=1, keepdims=True)
    out = np.empty((B, K, Lb, n), dtype=fdt)
    for t in range(Lb):
        v = np.einsum("bki,bkij->bkj", eta, T_ext[xs[:, :, t]])
        eta = v / v.sum(axis=2, keepdims=True)
        out[:, :, t] = eta
    return out.reshape(B, K * Lb, n)[:, :L]


@dataclass(frozen=True)
class SampleFile(Rendered):
    """What :func:`save_samples` wrote: the ``.npz`` file and the shape of its arrays."""

    path: str
    n_sequences: int
    length: int
    symbol_names: tuple[str, ...]
    state_names: tuple[str, ...]
    beliefs: bool
    seed: int | None

    def _tables(self) -> list[Table]:
        rows: list[list[Any]] = [
            ["file", self.path], ["sequences x symbols", f"{self.n_sequences} x {self.length}"],
            ["alphabet", " ".join(self.symbol_names)], ["states", len(self.state_names)],
            ["belief states", self.beliefs], ["seed", self.seed]]
        return [Table("Samples", ["", "value"], rows,
                      ["arrays: symbols (B, L), states (B, L+1)"
                       + (", beliefs (B, L+1, states)" if self.beliefs else "")
                       + ", symbol_names, state_names, seed"])]


def save_samples(samples: Samples, path: str | os.PathLike[str]) -> SampleFile:
    """Write ``samples`` to a compressed ``.npz`` file atomically (never half a file).

    Arrays: ``symbols``, ``states``, ``beliefs`` (when sampled), ``symbol_names``,
    ``state_names`` and ``seed`` (-1 when an explicit generator was used). Read them back with
    ``numpy.load(path)``; nothing in the file is pickled.
    """
    from occamlab._io import atomic_write_bytes

    if not str(path).endswith(".npz"):
        raise ConfigError(f"samples are written to a .npz file, got {str(path)!r}")
    buf = io.BytesIO()
    seed = -1 if samples.seed is None else samples.seed
    arrays: dict[str, Any] = {**samples.arrays(), "seed": np.array(seed)}
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    batch, length = samples.symbols.shape
    return SampleFile(path=str(path), n_sequences=int(batch), length=int(length),
                      symbol_names=tuple(samples.symbol_names),
                      state_names=tuple(samples.state_names),
                      beliefs=samples.beliefs is not None, seed=samples.seed)
