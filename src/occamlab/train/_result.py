"""Result types of the training engine: the learning-rate schedule's event and the run summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from occamlab._render import Rendered, Table
from occamlab.errors import OccamError

__all__ = ["TrainResult", "StepEvent", "TrainingDiverged", "lr_at"]


class TrainingDiverged(OccamError):
    """The loss became NaN or infinite; the last finite state was saved (the message says where)."""


@dataclass(frozen=True)
class StepEvent:
    """What a callback receives after each optimisation step (``val_loss`` only on eval steps)."""

    step: int
    tokens: int
    loss: float
    lr: float
    val_loss: float | None = None


def lr_at(step: int, *, lr: float, steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio * lr`` (step counted from 0).

    ``lr (s+1)/W`` for ``s < W``; else ``lr [r + (1-r)(1 + cos(pi (s-W)/(S-W)))/2]``.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class TrainResult(Rendered):
    """Summary of a training or fine-tuning run (``summary.json``); losses in nats per token.

    ``best_val_loss`` is the minimum held-out loss over evaluations (the early-stopping optimum,
    reached at ``best_step``); the kept model is the one from that evaluation.
    ``tokens_per_second`` counts training tokens over the time spent in training steps.
    ``evals`` holds ``(step, tokens, train_loss, val_loss)`` for each evaluation.

    Status: ``stopped_early`` says the early-stopping rule (``patience`` evaluations without
    improvement) ended the run. Training has no convergence criterion of its own, so there is no
    ``converged`` flag. :attr:`valid` says the result passed its own diagnostics, and
    :attr:`warnings` names the ones it failed. (A run whose loss became NaN or infinite raises
    :class:`TrainingDiverged`, and one with too little data raises ``DataError``, so neither
    returns a result.)
    """

    n_params: int
    n_params_non_embedding: int
    n_params_trainable: int
    tokens_seen: int
    steps: int
    final_train_loss: float
    final_val_loss: float
    best_val_loss: float
    best_step: int
    stopped_early: bool
    tokens_per_second: float
    flops_per_token: int
    threads: int
    mode: str
    evals: tuple[tuple[int, int, float, float], ...]
    config: dict[str, Any]
    device: str = "cpu"  # where it trained ("cpu", "cuda:0")

    @property
    def warnings(self) -> tuple[str, ...]:
        """The diagnostics this result fails, one sentence each (empty when :attr:`valid`).

        Checked: at least one evaluation was recorded; every recorded loss (final, best, and
        each evaluation's) is finite; the run did all ``config["steps"]`` steps unless early
        stopping ended it.
        """
        out: list[str] = []
        if not self.evals:
            out.append("no evaluation was recorded")
        losses = [self.final_train_loss, self.final_val_loss, self.best_val_loss]
        losses += [loss for e in self.evals for loss in e[2:]]
        if not all(math.isfinite(v) for v in losses):
            out.append("a recorded loss is NaN or infinite")
        planned = self.config.get("steps")
        if isinstance(planned, int) and self.steps < planned and not self.stopped_early:
            out.append(f"the run did {self.steps} of its {planned} steps without early stopping")
        return tuple(out)

    @property
    def valid(self) -> bool:
        """``True`` when the result passed all its own diagnostics (:attr:`warnings` is empty)."""
        return not self.warnings

    def _tables(self) -> list[Table]:
        rows: list[list[Any]] = [
            ["parameters (total)", self.n_params],
            ["parameters (non-embedding N)", self.n_params_non_embedding],
            ["parameters trained", self.n_params_trainable],
            ["mode", self.mode],
            ["steps", self.steps],
            ["tokens seen", self.tokens_seen],
            ["final train loss (nats)", self.final_train_loss],
            ["final val loss (nats)", self.final_val_loss],
            ["best val loss (nats)", self.best_val_loss],
            ["best step", self.best_step],
            ["stopped early", self.stopped_early],
            ["tokens/s", self.tokens_per_second],
            ["training FLOPs/token", self.flops_per_token],
            ["torch threads", self.threads],
            ["valid", self.valid],
        ]
        evals = Table(
            "Evaluations",
            ["step", "tokens", "train loss", "val loss"],
            [list(e) for e in self.evals],
        )
        return [Table("Training run", ["quantity", "value"], rows), evals]
