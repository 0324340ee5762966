"""The training-client protocol: where a model trains, shaped on Tinker's ``TrainingClient``.

A training client holds one model being fine-tuned (a base model plus rank-``r`` LoRA adapters)
and its optimizer. Every call is submitted at once and returns a
:class:`concurrent.futures.Future`; calls execute, and their futures complete, in submission
order, so a caller may submit ``forward_backward`` and ``optim_step`` before waiting for either::

    fb = client.forward_backward(batch)            # per-token log-probabilities, gradients kept
    step = client.optim_step(AdamParams(learning_rate=1e-4))
    loss = fb.result().loss; step.result()
    heldout = client.forward(eval_batch).result()  # log-probabilities only, nothing changes
    path = client.save_state("step-100").result()  # weights + optimizer state
    client.load_state(path).result()               # both restored

The loss of a batch is Tinker's ``cross_entropy``: ``L = -sum_{i,t} w_it log p(y_it | x_i,<=t)``
(a weighted *sum*; weights ``1/n`` make it the mean over ``n`` tokens). Gradients accumulate over
``forward_backward`` calls until ``optim_step`` applies AdamW and clears them.

Two implementations exist: :class:`~occamlab.train.LocalTrainingClient` (this package: the
local torch engine with LoRA through peft) and the Tinker service's
(:mod:`occamlab.experiments._tinker`, optional: ``pip install 'occamlab[tinker]'``).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from occamlab.errors import ConfigError

__all__ = ["Datum", "AdamParams", "ForwardOutput", "TrainingClient", "LOSSES", "done_future",
           "weighted_loss", "check_batch"]

LOSSES = ("cross_entropy",)


@dataclass(frozen=True, eq=False)
class Datum:
    """One sequence of a batch: model input tokens, the target token of every position, weights.

    ``tokens`` and ``targets`` are int64 arrays of the same length T (``targets[t]`` is the token
    that follows ``tokens[: t + 1]``); ``weights`` (float32, length T) scale each position's
    negative log-likelihood in the loss (``None``: all ones).
    """

    tokens: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        tok = np.asarray(self.tokens, dtype=np.int64).reshape(-1)
        tgt = np.asarray(self.targets, dtype=np.int64).reshape(-1)
        if tok.size == 0 or tok.shape != tgt.shape:
            raise ConfigError(f"a Datum needs tokens and targets of one positive length, got "
                              f"{tok.size} and {tgt.size}")
        if tok.min() < 0 or tgt.min() < 0:
            raise ConfigError("token ids must be non-negative integers")
        object.__setattr__(self, "tokens", tok)
        object.__setattr__(self, "targets", tgt)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float32).reshape(-1)
            if w.shape != tgt.shape or not np.all(np.isfinite(w)):
                raise ConfigError(f"weights must be {tgt.size} finite numbers, got {w.size}")
            object.__setattr__(self, "weights", w)

    @property
    def n_tokens(self) -> int:
        """Positions that carry a target (T)."""
        return int(self.targets.size)

    def weight_array(self) -> np.ndarray:
        return np.ones(self.n_tokens, np.float32) if self.weights is None else self.weights


@dataclass(frozen=True)
class AdamParams:
    """One optimizer step's AdamW hyperparameters (Tinker's ``AdamParams``, torch's ``AdamW``).

    Weight decay is decoupled (``w -= lr * weight_decay * w``); ``grad_clip_norm > 0`` clips the
    global gradient norm first (0: no clipping).
    """

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0

    def __post_init__(self) -> None:
        for name in ("learning_rate", "eps", "weight_decay", "grad_clip_norm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"AdamParams.{name} must be a finite number >= 0, got {v!r}")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
                raise ConfigError(f"AdamParams.{name} must be in [0, 1), got {v!r}")


@dataclass(frozen=True, eq=False)
class ForwardOutput:
    """What ``forward`` and ``forward_backward`` return for a batch.

    ``logprobs[i][t] = log p(targets[t] | tokens[: t + 1])`` of datum ``i``, in nats; ``loss`` is
    the batch's weighted loss ``-sum w log p`` (Tinker's ``cross_entropy``).
    """

    logprobs: tuple[np.ndarray, ...]
    loss: float

    @property
    def n_tokens(self) -> int:
        return int(sum(lp.size for lp in self.logprobs))

    @property
    def nll_sum(self) -> float:
        """Unweighted negative log-likelihood summed over every token (nats)."""
        return float(-sum(float(np.sum(lp, dtype=np.float64)) for lp in self.logprobs))


def weighted_loss(batch: list[Datum] | tuple[Datum, ...], logprobs: tuple[np.ndarray, ...]
                  ) -> float:
    """``-sum_i sum_t w_it logprobs_it`` (float64)."""
    return float(-sum(float(np.dot(d.weight_array().astype(np.float64), lp.astype(np.float64)))
                      for d, lp in zip(batch, logprobs, strict=True)))


def check_batch(batch: object, loss: str) -> list[Datum]:
    """A non-empty list of :class:`Datum` and a known loss, or a :class:`ConfigError`."""
    if loss not in LOSSES:
        raise ConfigError(f"loss {loss!r} is not supported; allowed: {', '.join(LOSSES)}")
    items = list(batch) if isinstance(batch, list | tuple) else None
    if not items or not all(isinstance(d, Datum) for d in items):
        raise ConfigError("a batch is a non-empty list of occamlab.train.Datum")
    return items


def done_future(value: Any = None, error: BaseException | None = None) -> cf.Future[Any]:
    """A future that is already complete (what a synchronous implementation returns)."""
    fut: cf.Future[Any] = cf.Future()
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)
    return fut


@runtime_checkable
class TrainingClient(Protocol):
    """A model being fine-tuned somewhere (see the module docstring).

    ``backend`` names where (``"local"``, ``"tinker"``), ``base_model`` what, ``rank`` the LoRA
    rank. Futures complete in submission order; an error is raised by the future's ``result()``.
    """

    backend: str
    base_model: str
    rank: int

    def forward_backward(self, batch: list[Datum], loss: str = "cross_entropy"
                         ) -> cf.Future[ForwardOutput]:
        """Log-probabilities of ``batch`` and the loss's gradients, accumulated until the next
        :meth:`optim_step`."""
        ...

    def forward(self, batch: list[Datum], loss: str = "cross_entropy"
                ) -> cf.Future[ForwardOutput]:
        """Log-probabilities of ``batch`` (held-out evaluation); nothing is trained."""
        ...

    def optim_step(self, params: AdamParams) -> cf.Future[None]:
        """Apply AdamW with ``params`` to the accumulated gradients, then clear them."""
        ...

    def save_state(self, name: str) -> cf.Future[str]:
        """Save weights and optimizer state under ``name``; the future gives the path to load."""
        ...

    def load_state(self, path: str) -> cf.Future[None]:
        """Restore weights and optimizer state saved by :meth:`save_state`."""
        ...

    def close(self) -> None:
        """Release the client (and what it holds on a service)."""
        ...
