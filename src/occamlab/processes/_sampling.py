"""Seeded, vectorized sampling of sequences, hidden states and belief states.

A batch of ``B`` sequences advances together: at each step every chain draws one joint
(symbol, next state) outcome from its state's row of ``T`` by inverse-CDF on one uniform draw, so
the cost per step is a few numpy operations on arrays of length ``B``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occamlab.errors import ConfigError
from occamlab.processes._presentation import Presentation

__all__ = ["Samples", "sample"]


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
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    beliefs: bool = False,
    chunk: int = 4096,
) -> Samples:
    """Sample ``batch`` sequences of ``length`` symbols from the stationary process.

    Parameters
    ----------
    presentation : Presentation
        Irreducible presentation; initial states are drawn from its stationary law.
    length : int
        Symbols per sequence (>= 1).
    batch : int
        Number of independent sequences (>= 1).
    seed, rng :
        Randomness (keyword only); ``rng`` wins when both are given.
    beliefs : bool
        Also return the belief state after each symbol (float32 when there are more than
        10^7 entries, float64 otherwise).
    chunk : int
        Steps whose uniforms are drawn at once (memory ``batch * chunk`` floats).

    Returns
    -------
    Samples
    """
    if length < 1:
        raise ConfigError(f"length must be >= 1, got {length}")
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    gen = rng if rng is not None else np.random.default_rng(seed)
    T = presentation.matrices
    A, n = T.shape[0], T.shape[1]
    pi = presentation.stationary_distribution()
    # Joint outcomes k = x * n + j; cumulative rows per state: (n, A*n).
    joint = T.transpose(1, 0, 2).reshape(n, A * n)
    cum = np.cumsum(joint, axis=1)
    cum[:, -1] = np.inf  # guards against round-off at the top
    state = np.minimum(np.searchsorted(np.cumsum(pi), gen.random(batch), side="right"), n - 1)
    sdt = _int_dtype(n)
    symbols: np.ndarray = np.empty((batch, length), dtype=_int_dtype(A))
    states: np.ndarray = np.empty((batch, length + 1), dtype=sdt)
    states[:, 0] = state
    bel = None
    if beliefs:
        fdt = np.float32 if batch * length * n > 10**7 else np.float64
        bel = np.empty((batch, length, n), dtype=fdt)
        eta = np.tile(pi, (batch, 1))
    for t0 in range(0, length, chunk):
        u = gen.random((min(chunk, length - t0), batch))
        for dt in range(u.shape[0]):
            t = t0 + dt
            # k = number of cumulative entries <= u, per chain.
            k = (cum[state] <= u[dt][:, None]).sum(axis=1)
            x = k // n
            state = k - x * n
            symbols[:, t] = x
            states[:, t + 1] = state
            if bel is not None:
                v = np.einsum("bi,bij->bj", eta, T[x])
                eta = v / v.sum(axis=1, keepdims=True)
                bel[:, t] = eta
        del u
    return Samples(
        symbols=symbols, states=states, beliefs=bel, symbol_names=presentation.symbols,
        state_names=presentation.states, seed=seed,
    )
