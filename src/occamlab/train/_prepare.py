"""What a run needs before its first step: thread count, held-out evaluation, the data split."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from occamlab.errors import DataError

from ._config import TrainConfig
from ._corpora import load_corpus
from ._data import TokenSplit, as_tokens, iter_windows, split_tokens

__all__ = ["default_threads", "evaluate", "prepare_split", "resolve_device"]


def resolve_device(spec: str) -> torch.device:
    """``"auto"``: the first CUDA device when torch sees one, else the CPU; else ``spec``.

    Raises
    ------
    ConfigError
        A CUDA device was asked for and torch sees none.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        from occamlab.errors import ConfigError

        raise ConfigError(f"device {spec!r}: torch sees no CUDA device here (use auto or cpu)")
    return torch.device(spec)


def default_threads() -> int:
    """Torch threads for one run: 2 when two cores are free, else 1.

    Alone on 2 cores, 2 threads are faster at every measured size (benchmarks/bench_train.py);
    on a busy machine a second thread oversubscribes the cores and is several times slower, so
    the 1-minute load average decides. Sweeps of independent runs should pass ``threads=1`` per
    worker (two 1-thread workers beat one 2-thread run in throughput; see docs/train.md).
    """
    cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        busy = 0.0
    free = cpus - busy
    return 2 if cpus >= 2 and free >= 1.5 else 1


@torch.no_grad()
def evaluate(
    model: nn.Module, tokens: np.ndarray, *, context: int, max_tokens: int, batch_size: int = 32
) -> float:
    """Mean next-token loss (nats) over the first ``max_tokens`` tokens, in disjoint windows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for x, y in iter_windows(tokens, context=context, batch_size=batch_size, max_tokens=max_tokens):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        )
        total += float(loss)
        count += y.numel()
    model.train(was_training)
    return total / count


def prepare_split(config: TrainConfig, tokens: Any = None, val_tokens: Any = None) -> TokenSplit:
    """Training/validation tokens for ``config``: from arrays if given, else from its corpus.

    Raises
    ------
    DataError
        Token ids outside the vocabulary, or too few training tokens for the requested steps
        (``steps * batch_size * context > max_epochs * n_train``).
    """
    V, T = config.model.vocab_size, config.model.context
    source = f"corpus {config.data.corpus!r}" if tokens is None else "the given tokens"
    if tokens is None:
        tokens = load_corpus(config.data.corpus, max_bytes=config.data.max_bytes)
    tokens = as_tokens(tokens, vocab_size=V)
    if val_tokens is None:
        split = split_tokens(tokens, val_fraction=config.data.val_fraction, context=T)
    else:
        val = as_tokens(val_tokens, vocab_size=V)
        if tokens.size <= T or val.size <= T:
            raise DataError(
                f"training and validation tokens need more than context {T} tokens each"
            )
        split = TokenSplit(train=tokens, val=val)
    requested = config.steps * config.tokens_per_step
    allowed = config.data.max_epochs * split.train.size
    if requested > allowed:
        raise DataError(
            f"{source} is too small: {config.steps} steps x "
            f"{config.tokens_per_step} tokens = {requested} training tokens, but it has "
            f"{split.train.size} training tokens and data.max_epochs = {config.data.max_epochs}; "
            "lower steps or batch_size, or raise data.max_epochs"
        )
    return split
