"""The ``finetune`` experiment: fine-tune a checkpoint (full, frozen embeddings, or LoRA of a rank).

``train`` holds the optimisation, schedule, evaluation and data of the fine-tune (its ``model`` is
replaced by the checkpoint's architecture); ``lr`` is the full fine-tuning rate and LoRA trains at
``lora_lr_scale * lr`` (about 10x is LoRA's best rate, Schulman et al. 2025). The run folder
receives what ``occam train`` writes (``best/``, ``last/``, ``loss_curve.jsonl``,
``summary.json``) and ``metrics.jsonl``; the result holds the same scalars as the ``train``
experiment plus ``mode`` and ``lora_rank``.

``occam finetune`` builds the same config (its default ``train`` settings are the checkpoint's own
training config, :func:`default_train_config`) and calls :func:`execute`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError
from occamlab.train import TrainConfig, TrainResult

from ._refs import resolve_ref
from ._registry import RunOutput
from .train import FILES, data_tokens, metrics_logger, summary

__all__ = ["Config", "MODES", "default_train_config", "execute", "run"]

MODES = ("full", "frozen-embedding", "lora")
# what a sweep says about a key this experiment does not have
KEY_HINTS = {"training_backend": "this experiment fine-tunes local checkpoints; to choose where "
             "a LoRA fine-tune trains (local or tinker) use experiment = \"lora-finetune\" "
             "(configs/finetune-tinker.toml, docs/experiments.md)"}


@dataclass(frozen=True)
class Config:
    """A fine-tuning run: the checkpoint, what to train, and how.

    Parameters
    ----------
    checkpoint : str
        A checkpoint directory or a run directory (its best checkpoint).
    train : TrainConfig
        Optimisation and data of the fine-tune (``train.data.corpus`` is the target data).
    mode : {"full", "frozen-embedding", "lora"}
    lora_rank : int
        Rank of the adapters (``mode = "lora"``; 1 allowed).
    lora_alpha : float or None
        LoRA scale numerator; ``None`` means the rank (scale 1).
    lora_modules : str
        ``all``, ``attention``, ``mlp``, or a comma list of ``attn.qkv,attn.proj,mlp.fc,mlp.proj``.
    lora_lr_scale : float
        LoRA learning rate = this x ``train.lr``.
    """

    checkpoint: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    mode: str = "full"
    lora_rank: int = 8
    lora_alpha: float | None = None
    lora_modules: str = "all"
    lora_lr_scale: float = 10.0

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ConfigError("checkpoint must name a checkpoint or run directory")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be a positive integer, got {self.lora_rank!r}")
        for name in ("lora_alpha", "lora_lr_scale"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {v!r}")


def default_train_config(checkpoint: str | Path, overrides: Mapping[str, Any] | None = None
                         ) -> TrainConfig:
    """The checkpoint's own training config (what ``occam finetune`` starts from when no
    ``--config`` is given), with dotted ``overrides`` applied; ``TrainConfig()`` when the
    checkpoint records none."""
    from occamlab.train import read_config

    saved = read_config(checkpoint).get("train") or {}
    saved = {k: v for k, v in saved.items() if k != "finetune"}
    base = TrainConfig.from_dict(saved) if saved else TrainConfig()
    return base.replace(**dict(overrides or {}))


def execute(config: Config, out: str | Path, *, resume: bool = False, progress: bool = False,
            callback: Callable[[Any], None] | None = None) -> TrainResult:
    """Fine-tune into ``out`` (see :func:`occamlab.train.finetune`); returns the result."""
    from occamlab.train import finetune

    _, res = finetune(
        resolve_ref(config.checkpoint, out), config.train, mode=config.mode,
        lora_rank=config.lora_rank, lora_alpha=config.lora_alpha,
        lora_modules=config.lora_modules, lora_lr_scale=config.lora_lr_scale,
        tokens=data_tokens(config.train.data.corpus, out), out=out, resume=resume,
        progress=progress, callback=callback,
    )
    return res


def run(config: Config, run_dir: Path) -> RunOutput:
    if config.train.threads == 0:
        config = dataclasses.replace(config, train=config.train.replace(threads=1))
    with metrics_logger(run_dir) as log:
        res = execute(config, run_dir, callback=log)
    out = summary(res)
    out.update(mode=config.mode, lora_rank=config.lora_rank if config.mode == "lora" else None)
    return RunOutput(out, files=FILES)
