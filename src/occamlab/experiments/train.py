"""The ``train`` experiment: one run of :func:`occamlab.train.train` from a ``TrainConfig``.

The run folder receives the training outputs (``best/``, ``last/``, ``loss_curve.jsonl``,
``summary.json``) and ``metrics.jsonl`` (one line per step: ``step, tokens, loss, lr`` and
``val_loss`` on evaluation steps). ``threads = 0`` means one torch thread in a sweep's worker: a
sweep runs one process per core (docs/train.md, Threads). The result holds the summary's scalars
(:data:`SCALARS`, losses in nats per token), plus ``flops = 6 N D`` with N non-embedding
parameters and D tokens seen (Kaplan et al. 2020's approximation).

``occam train`` calls :func:`execute` with the same config.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from occamlab.train import TrainConfig, TrainResult

from ._refs import PROCESS_PREFIX, RUN_PREFIX, process_tokens, resolve_ref
from ._registry import RunOutput

__all__ = ["Config", "SCALARS", "execute", "run", "metrics_logger", "summary"]

Config = TrainConfig

SCALARS = ("n_params", "n_params_non_embedding", "n_params_trainable", "tokens_seen", "steps",
           "final_train_loss", "final_val_loss", "best_val_loss", "best_step", "stopped_early",
           "tokens_per_second", "flops_per_token", "threads", "device")
FILES = ("summary.json", "loss_curve.jsonl", "best", "last")


@contextlib.contextmanager
def metrics_logger(run_dir: str | Path) -> Iterator[Callable[[Any], None]]:
    """A training callback that appends one JSON line per step to ``run_dir/metrics.jsonl``."""
    with open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8") as fh:

        def log(ev: Any) -> None:
            row = {"step": ev.step, "tokens": ev.tokens, "loss": ev.loss, "lr": ev.lr}
            if ev.val_loss is not None:
                row["val_loss"] = ev.val_loss
            fh.write(json.dumps(row) + "\n")

        yield log


def summary(res: TrainResult) -> dict[str, Any]:
    """The run's scalars (:data:`SCALARS`) and ``flops = 6 N D``: what the index shows."""
    d = res.to_dict()
    out = {k: d[k] for k in SCALARS}
    out["flops"] = 6 * res.n_params_non_embedding * res.tokens_seen
    return out


def data_tokens(corpus: str, run_dir: str | Path | None) -> Any:
    """Token ids for a ``process:`` corpus (sampled here), ``None`` for a corpus the training
    library reads itself; a ``run:`` reference is resolved against the run's store."""
    if corpus.startswith(PROCESS_PREFIX):
        return process_tokens(corpus)
    if corpus.startswith(RUN_PREFIX):
        from occamlab.train import load_corpus

        return load_corpus(resolve_ref(corpus, run_dir))
    return None


def execute(config: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = False,
            callback: Callable[[Any], None] | None = None) -> TrainResult:
    """Train into ``out`` (see :func:`occamlab.train.train`); returns the result.

    ``config.data.corpus`` may also be ``process:NAME?...`` (symbols sampled from a process of
    :mod:`occamlab.processes`, :func:`~occamlab.experiments._refs.process_spec`) or a ``run:``
    reference to a file of an earlier run of the store.
    """
    from occamlab.train import train

    tokens = data_tokens(config.data.corpus, out)
    _, res = train(config, tokens=tokens, out=out, resume=resume, progress=progress,
                   callback=callback)
    return res


def run(config: TrainConfig, run_dir: Path) -> RunOutput:
    if config.threads == 0:
        config = config.replace(threads=1)
    with metrics_logger(run_dir) as log:
        res = execute(config, run_dir, callback=log)
    files = FILES + (("snapshots",) if config.snapshot_steps else ())
    return RunOutput(summary(res), files=files)
