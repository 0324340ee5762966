"""The ``transfer-data`` experiment: nested training subsets and one held-out set, as token files.

Hernandez et al. (2021) train from scratch and fine-tune on subsets of a target dataset of sizes
``D`` and measure every run on the same held-out data. This run writes, for each size ``D`` of
``sizes``, ``train-D.npy``: the first ``D`` tokens of a training pool followed by the
``val_tokens + 1`` held-out tokens (so a ``train`` or ``finetune`` run reads it as its corpus with
``data.val_fraction = (val_tokens + 1) / (D + val_tokens + 1)``, :func:`val_fraction`), and
``val.npy`` (the held-out tokens alone, for evaluating other checkpoints). The subsets are nested:
the smaller ones are prefixes of the larger.

Two kinds of data:

- a corpus (``occam data list``): its bytes are cut into chunks of ``chunk`` bytes whose order is
  shuffled (seeded), so a subset samples the whole corpus rather than its first files; the first
  chunks are held out, the rest form the pool;
- a first-order Markov chain of the family :func:`markov_family` (``corpus = ""``): one sequence
  is sampled exactly (the pool), then an independent stretch (the held-out set). The result also
  records the chain's entropy rate and the exact log-loss of the chain itself on the held-out
  targets (the Bayes floor of this very evaluation set) with its standard error.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, DataError, check_seed

from ._registry import RunOutput

__all__ = ["Config", "run", "markov_family", "val_fraction", "sample_markov", "file_name"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """One data set of the transfer experiment.

    Parameters
    ----------
    corpus : str
        A registered corpus; ``""`` for a Markov chain of :func:`markov_family`.
    sizes : tuple of int
        The training subset sizes ``D`` in tokens.
    val_tokens : int
        Held-out target tokens (the file holds one more: the first is context only).
    chunk : int
        Corpus chunk length in bytes (text only).
    symbols, scale, family_seed, far_seed, shift : Markov chain of :func:`markov_family`.
    seed : int
        Shuffle of the chunks, or the sampling of the chain.
    """

    corpus: str = ""
    sizes: tuple[int, ...] = (1000,)
    val_tokens: int = 16_384
    chunk: int = 512
    symbols: int = 16
    scale: float = 1.5
    family_seed: int = 1
    far_seed: int = 2
    shift: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_seed(self.family_seed, name="family_seed")
        check_seed(self.far_seed, name="far_seed")
        if not self.sizes or any(isinstance(s, bool) or s < 2 for s in self.sizes):
            raise ConfigError(f"sizes must be integers >= 2 (tokens), got {self.sizes!r}")
        if self.val_tokens < 2 or self.chunk < 1:
            raise ConfigError("val_tokens >= 2 and chunk >= 1 are required")
        if not self.corpus and not (2 <= self.symbols <= 256 and self.scale > 0
                                    and 0.0 <= self.shift <= 1.0):
            raise ConfigError(f"Markov chain: 2 <= symbols <= 256, scale > 0 and shift in [0, 1] "
                              f"are required, got {self.symbols}, {self.scale}, {self.shift}")


def file_name(size: int) -> str:
    """The token file of the subset of ``size`` tokens."""
    return f"train-{int(size)}.npy"


def val_fraction(size: int, val_tokens: int) -> float:
    """``data.val_fraction`` that makes a run hold out exactly the ``val_tokens + 1`` tokens at the
    end of ``train-<size>.npy``."""
    n_val = val_tokens + 1
    return n_val / (size + n_val)


def markov_family(symbols: int, scale: float, family_seed: int, far_seed: int,
                  shift: float) -> Any:
    """The chain at ``shift`` on the path from the target chain (0) to an unrelated one (1).

    Row ``i`` of the transition matrix is ``softmax((1 - shift) z_i + shift w_i)``, with the logits
    ``z`` (target) and ``w`` (far end) drawn i.i.d. ``N(0, scale^2)`` from ``family_seed`` and
    ``far_seed``. The divergence from the target grows with ``shift`` and is computed exactly by
    :func:`occamlab.processes.kl_divergence_rate`.
    """
    from occamlab.processes import markov_chain

    z = np.random.default_rng(family_seed).normal(0.0, scale, (symbols, symbols))
    w = np.random.default_rng(far_seed).normal(0.0, scale, (symbols, symbols))
    u = (1.0 - shift) * z + shift * w
    P = np.exp(u - u.max(axis=1, keepdims=True))
    return markov_chain(P / P.sum(axis=1, keepdims=True), name=f"markov-{symbols} shift {shift:g}")


def sample_markov(chain: Any, length: int, *, seed: int = 0) -> np.ndarray:
    """``length`` symbols of a first-order chain from its stationary law, by inverse CDF on one
    uniform draw per symbol (the library's sampler is general, and far slower on one long chain)."""
    seed = check_seed(seed)
    P = chain.emission_probabilities  # (k, k): row = current symbol (state), column = next
    cum = [list(np.cumsum(row)) for row in P]
    k = len(cum)
    rng = np.random.default_rng(seed)
    u = rng.random(length + 1).tolist()
    s = min(bisect.bisect_right(list(np.cumsum(chain.stationary_distribution())), u[0]), k - 1)
    out = np.empty(length, dtype=np.uint8 if k <= 256 else np.uint16)
    for t in range(length):
        s = min(bisect.bisect_right(cum[s], u[t + 1]), k - 1)
        out[t] = s
    return out


def _corpus_split(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(pool, held-out) bytes of a corpus cut in shuffled chunks."""
    from occamlab.train import load_corpus

    tokens = load_corpus(config.corpus).astype(np.uint8)
    n_chunks = tokens.size // config.chunk
    chunks = tokens[: n_chunks * config.chunk].reshape(n_chunks, config.chunk)
    chunks = chunks[np.random.default_rng(config.seed).permutation(n_chunks)]
    n_val = math.ceil((config.val_tokens + 1) / config.chunk)
    if n_chunks <= n_val:
        raise DataError(f"corpus {config.corpus!r} has {tokens.size} bytes: too few for "
                        f"{config.val_tokens + 1} held-out tokens")
    return chunks[n_val:].ravel(), chunks[:n_val].ravel()[: config.val_tokens + 1]


def bayes_loss(chain: Any, tokens: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of ``-ln P(x_{t+1} | x_t)`` over the targets of ``tokens`` (nats):
    the exact loss of the chain's own predictor on this evaluation set."""
    P = chain.emission_probabilities
    t = tokens.astype(np.int64)
    nll = -np.log(P[t[:-1], t[1:]])
    return float(nll.mean()), float(nll.std(ddof=1) / math.sqrt(nll.size))


def run(config: Config, run_dir: Path) -> RunOutput:
    need = max(config.sizes)
    out: dict[str, Any] = {"kind": "corpus" if config.corpus else "markov",
                           "sizes": sorted(set(config.sizes)), "val_tokens": config.val_tokens + 1}
    if config.corpus:
        pool, val = _corpus_split(config)
    else:
        chain = markov_family(config.symbols, config.scale, config.family_seed, config.far_seed,
                              config.shift)
        seq = sample_markov(chain, need + config.val_tokens + 1, seed=config.seed)
        pool, val = seq[:need], seq[need:]
        mean, se = bayes_loss(chain, val)
        out.update(val_bayes_loss=mean, val_bayes_se=se)
    if pool.size < need:
        raise DataError(f"{config.corpus or 'the chain'}: the training pool has {pool.size} "
                        f"tokens, fewer than the largest subset D = {need}")
    out["n_pool"] = int(pool.size)
    files = ["val.npy"]
    np.save(Path(run_dir) / "val.npy", val)
    for size in sorted(set(config.sizes)):
        np.save(Path(run_dir) / file_name(size), np.concatenate([pool[:size], val]))
        files.append(file_name(size))
    return RunOutput(out, files=tuple(files))
