"""The training loop's state and its two files: ``train_state.json`` and ``loss_curve.jsonl``.

:class:`LoopState` is everything the loop carries from one step to the next besides the model
and the optimizer; a resumable checkpoint stores it as ``train_state.json`` (keys ``step,
best_val, best_step, bad_evals, recent, evals, train_time, stopped_early, threads``; the
optimizer's ``param_groups`` are added by :func:`save_checkpoint`). Those keys are the on-disk
contract: checkpoints written by earlier versions resume unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from occamlab.errors import DataError

__all__ = ["LoopState", "LossCurve"]

Eval = tuple[int, int, float, float]  # (step, tokens, train_loss, val_loss)


@dataclass
class LoopState:
    """Mutable state of one training loop (what ``train_state.json`` holds).

    Attributes
    ----------
    step : int
        Optimisation steps done.
    best_val_loss : float
        Lowest validation loss so far (nats per token; ``inf`` before the first evaluation).
    best_step : int
        Step of that evaluation (0 before the first).
    bad_evals : int
        Evaluations since the last improvement (early stopping counts them).
    recent : list of float
        Training-batch losses of the last ``eval_every`` steps (their mean is the train loss).
    evals : list of (step, tokens, train_loss, val_loss)
        One entry per evaluation.
    train_time : float
        Seconds spent in training steps (forward, backward, optimizer).
    stopped_early : bool
        Early stopping ended the run (``patience`` evaluations without improvement).
    threads : int
        Torch threads of the run (a resumed run keeps them: float sums depend on them).
    """

    step: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0
    recent: list[float] = field(default_factory=list)
    evals: list[Eval] = field(default_factory=list)
    train_time: float = 0.0
    stopped_early: bool = False
    threads: int = 0

    def record_loss(self, loss: float, *, window: int) -> None:
        """Count one step with training-batch loss ``loss``; keep the last ``window`` losses."""
        self.step += 1
        self.recent.append(loss)
        if len(self.recent) > window:
            del self.recent[: len(self.recent) - window]

    @property
    def train_loss(self) -> float:
        """Mean training-batch loss of the last ``eval_every`` steps (nats per token)."""
        return float(np.mean(self.recent))

    def record_eval(self, tokens: int, val_loss: float, *, patience: int) -> bool:
        """Add an evaluation at the current step; returns whether it is a new best.

        Without improvement the count of bad evaluations grows, and with ``patience > 0`` the
        run stops once it reaches ``patience`` (early stopping at the validation optimum).
        """
        self.evals.append((self.step, tokens, self.train_loss, val_loss))
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_step, self.bad_evals = val_loss, self.step, 0
            return True
        self.bad_evals += 1
        if patience and self.bad_evals >= patience:
            self.stopped_early = True
        return False

    def to_train_state(self) -> dict[str, Any]:
        """The ``train_state.json`` form (JSON has no infinity: no best yet is ``None``)."""
        best = self.best_val_loss if math.isfinite(self.best_val_loss) else None
        return {
            "step": self.step,
            "best_val": best,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "recent": list(self.recent),
            "evals": [list(e) for e in self.evals],
            "train_time": self.train_time,
            "stopped_early": self.stopped_early,
            "threads": self.threads,
        }

    @classmethod
    def from_train_state(cls, d: dict[str, Any], *, threads: int) -> LoopState:
        """Read :meth:`to_train_state`'s form; ``threads`` if the file has none (older runs)."""
        try:
            best = d["best_val"]
            return cls(
                step=int(d["step"]),
                best_val_loss=math.inf if best is None else float(best),
                best_step=int(d["best_step"]),
                bad_evals=int(d["bad_evals"]),
                recent=[float(v) for v in d["recent"]],
                evals=[(int(s), int(t), float(a), float(b)) for s, t, a, b in d["evals"]],
                train_time=float(d["train_time"]),
                stopped_early=bool(d["stopped_early"]),
                threads=int(d.get("threads", threads)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"train_state.json is incomplete or malformed ({exc!r})") from None


class LossCurve:
    """``loss_curve.jsonl``: one JSON line per step, flushed as written (nothing without a path).

    On resume the lines of steps after the checkpoint (written before the kill) are dropped, so
    the file ends as an uninterrupted run's would.
    """

    def __init__(self, path: Path | None, *, keep_until: int | None = None) -> None:
        self._file: IO[str] | None = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if keep_until is not None and path.exists():
            lines = path.read_text().splitlines()
            kept = [ln for ln in lines if ln and json.loads(ln)["step"] <= keep_until]
        path.write_text("".join(ln + "\n" for ln in kept))
        self._file = path.open("a")

    def write(self, line: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
