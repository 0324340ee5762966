"""Language-model data and loss for the libraries that study a trained model (LLC, compression).

:func:`lm_windows` turns a corpus into the disjoint ``(inputs, targets)`` windows the model was
trained to predict, and :func:`token_loss` is the mean next-token cross-entropy of its logits
on them: together they are the data and ``loss_fn`` that ``occamlab.slt`` estimators take.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from occamlab.errors import ConfigError, DataError

from ._corpora import load_corpus
from ._data import as_tokens, iter_windows

__all__ = ["lm_windows", "token_loss"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def lm_windows(
    corpus: str | os.PathLike[str] | np.ndarray | Sequence[int],
    *,
    context: int,
    vocab_size: int,
    max_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint next-token windows of the first ``max_tokens + 1`` tokens of a corpus.

    Window ``j`` starts at token ``i = j T`` (``T = context``): ``inputs[j] = tokens[i : i+T]``,
    ``targets[j] = tokens[i+1 : i+T+1]``, for ``j < min(floor((n - 1) / T), floor(max_tokens /
    T))`` where ``n`` is the number of tokens read. Every target is predicted once, so
    ``targets.numel()`` (at most ``max_tokens``) is the sample size ``n`` of an LLC estimate.

    Parameters
    ----------
    corpus : str, path, or 1-D array of int
        A corpus spec as :func:`load_corpus` reads it (a name from ``occam data list``, a text
        file or folder, a ``.npy`` array of symbol ids, ``hf:NAME``); only its first
        ``max_tokens + 1`` tokens (bytes of a text) are read. Or the token ids themselves (a
        ``str`` is always a spec, never text to tokenize).
    context : int
        Window length ``T``, the model's context.
    vocab_size : int
        ``V``: every token read must be below it.
    max_tokens : int
        Most target tokens to use; must exceed ``context`` (at least one window).

    Returns
    -------
    (inputs, targets) : tuple of torch.Tensor
        int64 tensors of shape ``(n_windows, T)``.

    Raises
    ------
    ConfigError
        ``context``, ``vocab_size`` or ``max_tokens`` not a positive integer, or
        ``max_tokens <= context``.
    DataError
        The corpus cannot be read, holds an id outside ``[0, V)``, or has fewer than
        ``context + 1`` tokens (no complete window).

    Examples
    --------
    >>> x, y = lm_windows(np.arange(10), context=4, vocab_size=10, max_tokens=8)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2, 3], [4, 5, 6, 7]], [[1, 2, 3, 4], [5, 6, 7, 8]])
    """
    context = _positive_int("context", context)
    vocab_size = _positive_int("vocab_size", vocab_size)
    max_tokens = _positive_int("max_tokens", max_tokens)
    if max_tokens <= context:
        raise ConfigError(f"max_tokens must be > the model context {context}, got {max_tokens}")
    if isinstance(corpus, str | os.PathLike):
        label = repr(os.fspath(corpus))
        raw: np.ndarray = load_corpus(os.fspath(corpus), max_bytes=max_tokens + 1)
    else:
        label = "the given tokens"
        raw = np.asarray(corpus)
        raw = raw[: max_tokens + 1] if raw.ndim == 1 else raw  # as_tokens names a wrong shape
    tokens = as_tokens(raw, vocab_size=vocab_size)
    if tokens.size <= context:
        raise DataError(
            f"{label}: {tokens.size} tokens, no complete window of {context} tokens "
            f"(needs {context + 1})"
        )
    # one batch holding every window (their number is below the token count)
    batch = iter_windows(tokens, context=context, batch_size=tokens.size, max_tokens=max_tokens)
    return next(batch)


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats, ``-(1/N) sum_i log softmax(logits_i)[targets_i]``.

    ``N`` counts every target position (``B T`` for a batch of windows). Equal to
    ``F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))``; differentiable, and usable
    under ``torch.func`` transforms (``occamlab.slt`` vectorizes it per example).

    Parameters
    ----------
    logits : torch.Tensor
        ``(..., V)`` float, e.g. ``(B, T, V)`` from ``Transformer.forward``.
    targets : torch.Tensor
        ``(...)`` integer token ids in ``[0, V)`` (int64), e.g. ``(B, T)`` from
        :func:`lm_windows`. (As in torch, a target of ``-100`` is ignored.)

    Returns
    -------
    torch.Tensor
        A 0-dim tensor: the mean loss in nats per token.

    Raises
    ------
    DataError
        Shapes that do not match (``logits.shape[:-1] != targets.shape``), targets that are not
        integers, or a target outside ``[0, V)``.

    Examples
    --------
    >>> logits = torch.zeros(1, 3, 4)  # a uniform prediction over 4 tokens
    >>> round(float(token_loss(logits, torch.tensor([[0, 1, 3]]))), 6)  # ln 4
    1.386294
    """
    if logits.dim() < 2 or logits.shape[:-1] != targets.shape:
        raise DataError(
            f"token_loss: logits (..., V) and targets (...) must match, got shapes "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise DataError(f"token_loss: targets must be integer token ids, got {targets.dtype}")
    try:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    except IndexError as exc:  # torch's "Target k is out of bounds"
        raise DataError(
            f"token_loss: targets must be token ids in [0, {logits.shape[-1]}) ({exc})"
        ) from None
