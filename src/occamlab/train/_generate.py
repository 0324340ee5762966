"""Sampling sequences from a trained model: :func:`generate` (seeded, temperature, cached).

Each new symbol is drawn from the model's next-token distribution given the symbols before it in
a window of at most ``context`` symbols. The model has learned absolute positions, so a window
cannot slide under a key/value cache; instead a window restarts from the last ``min_context``
symbols (one forward pass over them, positions ``0 .. min_context - 1``) and then grows one
cached step per symbol until it is full. Every symbol so sees between ``min_context`` and
``context`` symbols before it (all of them near the start); ``min_context = context`` (the
default) is the exact sliding window, one full pass per symbol. The model was trained on windows
that start anywhere in the data, so a window of its own latest output is an input it knows.

Draws are inverse-CDF on uniforms from a numpy generator seeded by ``seed``, on the CPU, so the
symbols depend only on the model's probabilities and the seed, not on the device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from occamlab.errors import ConfigError, DataError, check_seed

from ._model import Transformer

__all__ = ["generate"]


def _check(model: Any, length: Any, batch: Any, temperature: Any) -> None:
    if not isinstance(model, Transformer):
        raise ConfigError(f"generate needs a Transformer, got {type(model).__name__}")
    for name, v in (("length", length), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, int | float)
            or not (temperature > 0 and math.isfinite(temperature))):
        raise ConfigError(f"temperature must be a positive number, got {temperature!r}")


def _prompt(prompt: Any, batch: int, vocab: int, rng: np.random.Generator) -> np.ndarray:
    if prompt is None:  # one uniform start symbol per sequence (not part of the output)
        return rng.integers(vocab, size=(batch, 1)).astype(np.int64)
    p = np.asarray(prompt)
    if p.ndim == 1:
        p = np.broadcast_to(p, (batch, p.size))
    if p.ndim != 2 or p.shape[0] != batch or p.shape[1] < 1:
        raise DataError(f"prompt must be 1-D or ({batch}, P) with P >= 1, got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise DataError(f"prompt must hold integer token ids, got dtype {p.dtype}")
    if p.min() < 0 or p.max() >= vocab:
        raise DataError(f"prompt ids must be in [0, {vocab}), got values in "
                        f"[{int(p.min())}, {int(p.max())}]")
    return np.array(p, dtype=np.int64)


class _Cache:
    """Keys and values of every block for the window so far: (B, H, t, hd) each."""

    def __init__(self, model: Transformer) -> None:
        self.model = model
        self.k: list[torch.Tensor | None] = [None] * len(model.blocks)
        self.v: list[torch.Tensor | None] = [None] * len(model.blocks)
        self.length = 0

    def _attend(self, i: int, block: Any, x: torch.Tensor) -> torch.Tensor:
        B, n, C = x.shape
        H = block.attn.n_head
        q, k, v = block.attn.qkv(block.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, n, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, n, hd)
        old_k, old_v = self.k[i], self.v[i]
        if old_k is not None and old_v is not None:
            k, v = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)
        self.k[i], self.v[i] = k, v
        # a window's first pass is causal; a one-token step attends to everything cached
        y = F.scaled_dot_product_attention(q, k, v, is_causal=old_k is None and n > 1)
        return block.attn.proj(y.transpose(1, 2).reshape(B, n, C))  # type: ignore[no-any-return]

    def feed(self, idx: torch.Tensor) -> torch.Tensor:
        """Append tokens (B, n) at the next positions; the last position's logits (B, V)."""
        m = self.model
        n = idx.shape[1]
        x = m.wte(idx) + m.wpe.weight[self.length:self.length + n]  # (B, n, d)
        blocks: list[Any] = list(m.blocks)
        for i, block in enumerate(blocks):
            x = x + self._attend(i, block, x)
            x = x + block.mlp(block.ln2(x))
        self.length += n
        weight = m.wte.weight if m.head is None else m.head.weight
        return m.ln_f(x[:, -1]) @ weight.T  # type: ignore[no-any-return]


def _draw(logits: torch.Tensor, temperature: float, rng: np.random.Generator) -> np.ndarray:
    probs = torch.softmax(logits.double() / temperature, dim=-1).cpu().numpy()  # (B, V)
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = np.inf  # round-off guard: the last symbol takes what is left
    return (cum <= rng.random(len(probs))[:, None]).sum(axis=1)  # type: ignore[no-any-return]


@torch.no_grad()
def generate(model: Transformer, length: int, *, batch: int = 1, seed: int = 0,
             temperature: float = 1.0, prompt: Any = None,
             min_context: int | None = None) -> np.ndarray:
    """Sample ``batch`` sequences of ``length`` symbols from ``model``, autoregressively.

    Symbol ``t`` of a sequence is drawn from ``softmax(logits / temperature)`` given the symbols
    of its window (see the module doc); ``temperature = 1`` is the model's own distribution. The
    model is put in eval mode and left there.

    Parameters
    ----------
    model : Transformer
        A trained model (any device).
    length : int
        Symbols to generate per sequence (the prompt is not included).
    batch : int
        Sequences generated side by side.
    seed : int
        Seed of the draws (keyword only; a non-negative integer).
    temperature : float
        Softmax temperature (> 0).
    prompt : array_like of int, optional
        Start symbols, 1-D (the same for every sequence) or ``(batch, P)``. Default: one start
        symbol per sequence drawn uniformly from the vocabulary. Callers who want stationary
        output discard a burn-in of ``context`` symbols.
    min_context : int, optional
        The fewest symbols a draw conditions on once that many exist, ``1 .. context``; default
        ``context`` (an exact sliding window). Smaller is faster: about
        ``context / (context - min_context + 1)`` times fewer tokens through the model.

    Returns
    -------
    numpy.ndarray
        ``(batch, length)`` int64 token ids.

    Raises
    ------
    ConfigError
        Not a :class:`Transformer`, a length, batch, temperature or min_context out of range,
        a bad seed.
    DataError
        A prompt of the wrong shape or with ids outside the vocabulary.

    Examples
    --------
    >>> from occamlab.train import ModelConfig, Transformer, generate
    >>> m = Transformer(ModelConfig(vocab_size=3, context=8, d_model=8, n_layer=1, n_head=2))
    >>> generate(m, 5, batch=2, seed=0).shape
    (2, 5)
    """
    _check(model, length, batch, temperature)
    rng = np.random.default_rng(check_seed(seed))
    V, T = model.config.vocab_size, model.config.context
    keep = T if min_context is None else min_context
    if isinstance(keep, bool) or not isinstance(keep, int | np.integer) or not 1 <= keep <= T:
        raise ConfigError(f"min_context must be an integer in [1, {T}] (the context), "
                          f"got {min_context!r}")
    seq = _prompt(prompt, int(batch), V, rng)
    start = seq.shape[1]
    out = np.empty((int(batch), start + int(length)), dtype=np.int64)
    out[:, :start] = seq
    device = next(model.parameters()).device
    model.eval()
    t, end = start, start + int(length)
    while t < end:
        cache = _Cache(model)  # a new window: the last `keep` symbols at positions 0, 1, ...
        logits = cache.feed(torch.from_numpy(out[:, max(0, t - keep):t]).to(device))
        out[:, t] = _draw(logits, float(temperature), rng)
        t += 1
        while cache.length < T and t < end:
            logits = cache.feed(torch.from_numpy(out[:, t - 1:t]).to(device))
            out[:, t] = _draw(logits, float(temperature), rng)
            t += 1
    return out[:, start:]
