"""The ``train`` experiment: one run of :func:`occamlab.train.train` from a ``TrainConfig``.

The run folder receives the training outputs (``best/``, ``last/``, ``loss_curve.jsonl``,
``summary.json``) and ``metrics.jsonl`` (one line per step: ``step, tokens, loss, lr`` and
``val_loss`` on evaluation steps). ``threads = 0`` means one torch thread here: a sweep runs one
process per core (docs/train.md, Threads). The result holds the summary's scalars:
``n_params, n_params_non_embedding, n_params_trainable, tokens_seen, steps, final_train_loss,
final_val_loss, best_val_loss, best_step, stopped_early, tokens_per_second, flops_per_token,
threads`` (losses in nats per token), plus ``flops = 6 N D`` with N non-embedding parameters and
D tokens seen (Kaplan et al. 2020's approximation).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from occamlab.train import TrainConfig

__all__ = ["Config", "make_config", "run"]

Config = TrainConfig

SCALARS = ("n_params", "n_params_non_embedding", "n_params_trainable", "tokens_seen", "steps",
           "final_train_loss", "final_val_loss", "best_val_loss", "best_step", "stopped_early",
           "tokens_per_second", "flops_per_token", "threads")


def make_config(d: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict(d)


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def run(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    from occamlab.train import train

    if config.threads == 0:
        config = config.replace(threads=1)
    metrics = open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def log(ev: Any) -> None:
        row = {"step": ev.step, "tokens": ev.tokens, "loss": ev.loss, "lr": ev.lr}
        if ev.val_loss is not None:
            row["val_loss"] = ev.val_loss
        metrics.write(json.dumps(row) + "\n")

    try:
        _, res = train(config, out=run_dir, callback=log)
    finally:
        metrics.close()
    d = res.to_dict()
    out = {k: _finite(d[k]) for k in SCALARS}
    out["flops"] = 6 * res.n_params_non_embedding * res.tokens_seen
    return out
