"""Fine-tuning a trained checkpoint on another corpus: full, frozen-embedding, or LoRA (peft).

LoRA (Hu et al. 2021, arXiv:2106.09685) replaces a frozen weight ``W`` by ``W + (alpha/r) B A``
with ``A`` (r x d_in) and ``B`` (d_out x r, initialised to 0), training only A and B. Following
"LoRA Without Regret" (Thinking Machines 2025) it is applied to every block's attention and MLP
matrices by default, and its learning rate is ``lora_lr_scale`` (default 10) times the full
fine-tuning rate ``config.lr``. The returned and saved model has the adapters merged, so it is a
plain :class:`Transformer` that :func:`load_checkpoint` reads; the resumable ``last/`` checkpoint
also holds the adapters themselves (``trainable.safetensors``), so a killed LoRA fine-tune resumes
from the pretrained checkpoint plus its adapters and optimizer state.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from occamlab.errors import ConfigError, check_seed

from ._checkpoint import load_checkpoint
from ._config import TrainConfig
from ._loop import fit
from ._model import Transformer
from ._prepare import prepare_split
from ._result import StepEvent, TrainResult

__all__ = ["finetune", "MODES", "LORA_TARGETS", "lora_targets"]

MODES = ("full", "frozen_embedding", "lora")
LORA_TARGETS = {
    "all": ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"),
    "attention": ("attn.qkv", "attn.proj"),
    "mlp": ("mlp.fc", "mlp.proj"),
}
_NAMES = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")


def lora_targets(spec: str) -> tuple[str, ...]:
    """Module suffixes for ``spec``: ``all``, ``attention``, ``mlp``, or a comma list of names."""
    if spec in LORA_TARGETS:
        return LORA_TARGETS[spec]
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    bad = [n for n in names if n not in _NAMES]
    if not names or bad:
        raise ConfigError(
            f"lora modules {spec!r}: allowed are {', '.join(LORA_TARGETS)} or a comma list of "
            f"{', '.join(_NAMES)}"
        )
    return names


def _wrap_lora(
    model: Transformer, *, rank: int, alpha: float, targets: tuple[str, ...], seed: int
) -> nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError(
            "LoRA needs the optional packages peft and transformers (pip install 'occamlab[lora]')"
        ) from None
    cfg = LoraConfig(
        r=rank,
        lora_alpha=alpha,  # type: ignore[arg-type]
        lora_dropout=0.0,
        bias="none",
        target_modules=list(targets),
    )
    # peft draws A from the global generator: let it draw from a fork (the caller's generator is
    # left as it was), then redraw A from ours so that runs are reproducible
    with torch.random.fork_rng(devices=[]):
        wrapped = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(check_seed(seed) + 1)
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_A" in name:
                bound = 1.0 / math.sqrt(p.shape[1])  # kaiming-uniform(a=sqrt 5), as peft does
                p.uniform_(-bound, bound, generator=g)
            elif "lora_B" in name:
                p.zero_()
    return wrapped


def _merged(wrapped: nn.Module) -> Transformer:
    merged = copy.deepcopy(wrapped).merge_and_unload()  # type: ignore[operator]
    assert isinstance(merged, Transformer)
    return merged


def finetune(
    checkpoint: str | os.PathLike[str] | Transformer,
    config: TrainConfig,
    *,
    mode: str = "full",
    lora_rank: int = 8,
    lora_alpha: float | None = None,
    lora_modules: str = "all",
    lora_lr_scale: float = 10.0,
    tokens: Any = None,
    val_tokens: Any = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[StepEvent], None] | None = None,
) -> tuple[Transformer, TrainResult]:
    """Fine-tune a checkpoint (or model) on ``config.data`` / ``tokens``; the input is not modified.

    Parameters
    ----------
    checkpoint : path or Transformer
        The pretrained model; ``config.model`` is replaced by its architecture.
    config : TrainConfig
        Optimiser, schedule, evaluation and data of the fine-tuning run (``lr`` = full-FT rate).
        ``config.seed`` sets the batch order and the LoRA initialisation of ``A``.
    mode : {"full", "frozen_embedding", "lora"}
        Train every parameter; everything but the token/position embeddings (and the tied
        unembedding); or rank-``lora_rank`` adapters on ``lora_modules``.
    lora_rank : int
        ``r`` (a positive integer).
    lora_alpha : float, optional
        LoRA scale numerator; default ``lora_rank`` (scale 1).
    lora_modules : str
        ``"all"``, ``"attention"``, ``"mlp"`` or a comma list (see :func:`lora_targets`).
    lora_lr_scale : float
        The LoRA learning rate is ``lora_lr_scale * config.lr``.
    tokens, val_tokens, out, resume, progress, callback
        As in :func:`~occamlab.train.train`.

    Returns
    -------
    (model, result) : the fine-tuned model at the validation optimum, with adapters merged.

    Raises
    ------
    ConfigError
        Unknown mode or LoRA modules, a rank that is not a positive integer, peft missing.
    DataError, TrainingDiverged
        As in :func:`~occamlab.train.train`.
    """
    mode = _check_mode(mode, lora_rank)
    if isinstance(checkpoint, Transformer):
        base = copy.deepcopy(checkpoint)
    else:
        base, _ = load_checkpoint(checkpoint)
    config = dataclasses.replace(config, model=base.config)
    split = prepare_split(config, tokens, val_tokens)
    record: dict[str, Any] = config.to_dict()
    record["finetune"] = {
        "mode": mode,
        "from": None if isinstance(checkpoint, Transformer) else str(checkpoint),
    }
    base.train()
    if mode != "lora":
        if mode == "frozen_embedding":
            base.wte.weight.requires_grad_(False)
            base.wpe.weight.requires_grad_(False)
        return fit(base, config, split, out=out, resume=resume, progress=progress,
                   callback=callback, mode=mode, record=record)
    targets = lora_targets(lora_modules)
    alpha = float(lora_rank if lora_alpha is None else lora_alpha)
    record["finetune"].update(
        rank=lora_rank, alpha=alpha, modules=list(targets), lr_scale=lora_lr_scale
    )
    wrapped = _wrap_lora(base, rank=lora_rank, alpha=alpha, targets=targets, seed=config.seed)
    lora_config = dataclasses.replace(config, lr=config.lr * lora_lr_scale)
    return fit(wrapped, lora_config, split, out=out, resume=resume, progress=progress,
               callback=callback, export=_merged, save_trainable=True,
               mode=f"lora-r{lora_rank}", record=record)


def _check_mode(mode: str, lora_rank: object) -> str:
    """The canonical mode name (``-`` read as ``_``); a LoRA rank must be a positive integer."""
    mode = mode.replace("-", "_")
    if mode not in MODES:
        raise ConfigError(f"fine-tuning mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "lora" and (
        isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 1
    ):
        raise ConfigError(f"lora rank must be a positive integer, got {lora_rank!r}")
    return mode
