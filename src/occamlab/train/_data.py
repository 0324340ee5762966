"""Tokens and windows: a byte-level tokenizer, held-out splits, (inputs, targets) batches.

A token array is a 1-D numpy array of non-negative integer ids: bytes of a text (0..255) or the
symbols of a stochastic process (0..k-1) passed in directly. A window of context T starting at
offset i is ``inputs = tokens[i : i+T]``, ``targets = tokens[i+1 : i+T+1]``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from occamlab.errors import ConfigError, DataError, check_seed

__all__ = [
    "ByteTokenizer",
    "as_tokens",
    "split_tokens",
    "TokenSplit",
    "iter_windows",
    "sample_batch",
]


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, lossless, no training.

    >>> ByteTokenizer().encode("hé").tolist()
    [104, 195, 169]
    >>> ByteTokenizer().decode([104, 195, 169])
    'hé'
    """

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, ids: np.ndarray | list[int]) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8).tolist()).decode("utf-8", errors="replace")


def as_tokens(
    data: np.ndarray | list[int] | bytes | str, *, vocab_size: int | None = None
) -> np.ndarray:
    """Validate and convert ``data`` into a 1-D int64 token array (a new array; input untouched).

    ``str`` and ``bytes`` are byte-tokenized; arrays must hold non-negative integers below
    ``vocab_size`` when it is given.

    Raises
    ------
    DataError
        Not 1-D, not integer, negative, or an id >= ``vocab_size``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, bytes | bytearray):
        arr = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    else:
        arr = np.asarray(data)
        if arr.ndim != 1:
            raise DataError(f"tokens must be a 1-D array, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DataError(f"tokens must be integers (symbol ids), got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=True)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise DataError(f"tokens must be non-negative, found {lo}")
        if vocab_size is not None and hi >= vocab_size:
            raise DataError(f"token id {hi} is out of range for vocab_size {vocab_size}")
    return arr


@dataclass(frozen=True)
class TokenSplit:
    """Training and validation tokens; validation is the tail, so no window straddles both."""

    train: np.ndarray
    val: np.ndarray


def split_tokens(tokens: np.ndarray, *, val_fraction: float, context: int) -> TokenSplit:
    """Split into a leading training part and a trailing validation part that never overlap.

    Both parts need at least ``context + 1`` tokens (one full window).

    Raises
    ------
    DataError
        Too few tokens for one window on each side.
    """
    tokens = as_tokens(tokens)
    n = tokens.size
    n_val = int(round(n * val_fraction))
    need = context + 1
    if n_val < need or n - n_val < need:
        raise DataError(
            f"corpus has {n} tokens: too small for context {context} "
            f"with val_fraction {val_fraction} "
            f"(each side needs at least {need} tokens)"
        )
    return TokenSplit(train=tokens[: n - n_val], val=tokens[n - n_val :])


def _stack(
    tokens: np.ndarray, starts: np.ndarray, context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + np.arange(context + 1)[None, :]  # (B, T+1)
    chunk = torch.from_numpy(tokens[idx])
    return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()


def sample_batch(
    tokens: np.ndarray, *, context: int, batch_size: int, step: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training batch of step ``step``: ``batch_size`` window offsets uniform on [0, n - T - 1].

    The offsets are drawn by ``numpy.random.default_rng([seed, step])``: they depend only on
    ``(seed, step)``, so a run resumed at step s sees exactly the batches an uninterrupted run
    would.

    Parameters
    ----------
    tokens : np.ndarray
        1-D int64 token ids (``n`` of them).
    context, batch_size : int
        ``T`` and ``B``: the result is two int64 tensors of shape ``(B, T)``.
    step : int
        The optimisation step (a non-negative integer).
    seed : int, default 0
        The run's seed (a non-negative integer).

    Raises
    ------
    ConfigError
        ``seed`` or ``step`` is not a non-negative integer.
    DataError
        Fewer than ``T + 1`` tokens.
    """
    seed = check_seed(seed)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ConfigError(f"step must be a non-negative integer, got {step!r}")
    n_start = tokens.size - context
    if n_start < 1:
        raise DataError(f"{tokens.size} tokens are too few for one window of context {context}")
    rng = np.random.default_rng([seed, int(step)])
    starts = rng.integers(0, n_start, size=batch_size)
    return _stack(tokens, starts, context)


def iter_windows(
    data: np.ndarray | list[int] | bytes | str,
    *,
    context: int,
    batch_size: int,
    max_tokens: int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, targets) int64 tensors of shape (B, T) over non-overlapping windows.

    Windows start at 0, T, 2T, ... (every target token is predicted once), in order, until
    ``max_tokens`` target tokens or the data run out; the last batch may be smaller unless
    ``drop_last``. This is the evaluation path other libraries use to build a batch.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = next(iter_windows(np.arange(10), context=4, batch_size=2))
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2, 3], [4, 5, 6, 7]], [[1, 2, 3, 4], [5, 6, 7, 8]])
    """
    if context < 1 or batch_size < 1:
        raise DataError("context and batch_size must be positive")
    tokens = as_tokens(data)
    n_windows = (tokens.size - 1) // context
    if max_tokens is not None:
        n_windows = min(n_windows, max(1, max_tokens // context))
    if n_windows < 1:
        raise DataError(f"{tokens.size} tokens are too few for one window of context {context}")
    starts = np.arange(n_windows) * context
    for i in range(0, n_windows, batch_size):
        s = starts[i : i + batch_size]
        if drop_last and s.size < batch_size:
            return
        yield _stack(tokens, s, context)
