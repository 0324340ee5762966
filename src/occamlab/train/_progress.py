"""Progress of a training run: a rich bar on a terminal, else one plain line per evaluation."""

from __future__ import annotations

import sys
from typing import Any

from ._config import TrainConfig
from ._state import LoopState

__all__ = ["Progress"]


class Progress:
    """A rich progress bar on a terminal; else plain evaluation lines on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int, completed: int) -> None:
        self.enabled, self.total, self.completed = enabled, total, completed
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "train", total=self.total, completed=self.completed, info=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def step(self, state: LoopState, tokens_per_step: int, loss: float) -> None:
        """Advance the bar (loss of the last batch, training tokens per second)."""
        if self._bar is not None:
            rate = state.step * tokens_per_step / max(state.train_time, 1e-9)
            info = f"loss {loss:.3f}  {rate / 1e3:.1f}k tok/s"
            self._bar.update(self._task, completed=state.step, info=info)

    def evaluation(self, state: LoopState, config: TrainConfig) -> None:
        """Without a bar, one line per evaluation (train and val loss, speed, time left)."""
        if not self.enabled or self._bar is not None:
            return
        step, _, train_loss, val = state.evals[-1]
        rate = step * config.tokens_per_step / max(state.train_time, 1e-9)
        eta = (config.steps - step) * config.tokens_per_step / rate
        print(
            f"step {step}/{config.steps}  train {train_loss:.4f}  "
            f"val {val:.4f}  {rate / 1e3:.1f}k tok/s  ETA {eta:.0f} s",
            file=sys.stderr,
            flush=True,
        )
