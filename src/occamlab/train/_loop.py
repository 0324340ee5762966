"""The training loop: AdamW, warm-up + cosine, clipping, evaluation, early stopping, resume.

A run directory ``out`` holds::

    best/             checkpoint at the validation optimum (model.safetensors + config.json)
    last/             resumable checkpoint (adds optimizer.safetensors + train_state.json)
    loss_curve.jsonl  one line per step: step, tokens, loss, lr (and val_loss, train_loss on evals)
    summary.json      TrainResult.to_dict()

Batches depend only on ``(seed, step)`` and the state saved in ``last/`` is complete, so a run
killed and resumed from ``last/`` ends with exactly the losses of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, DataError

from ._checkpoint import load_checkpoint, load_optimizer_state, load_trainable, save_checkpoint
from ._config import TrainConfig
from ._data import TokenSplit, sample_batch
from ._model import Transformer, flops_per_token, n_params, n_params_non_embedding
from ._prepare import default_threads, evaluate, prepare_split
from ._result import StepEvent, TrainingDiverged, TrainResult, lr_at

__all__ = ["train", "fit"]


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # fused=True: one C++ kernel per parameter group instead of a dozen tensor ops per
    # parameter; same update rule (torch's AdamW), measured faster in benchmarks/bench_train.py
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=True
    )


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def _restore_trainable(model: nn.Module, ckpt: Path) -> None:
    """Copy ``trainable.safetensors`` into the parameters of ``model`` being trained."""
    saved = load_trainable(ckpt)
    want = {name: tuple(p.shape) for name, p in _trainable(model)}
    got = {name: tuple(t.shape) for name, t in saved.items()}
    if want != got:
        raise DataError(
            f"cannot resume from {ckpt}: its trained tensors do not match this run's "
            f"({len(got)} saved, {len(want)} expected; e.g. "
            f"{sorted(set(want) ^ set(got))[:2] or [k for k in want if want[k] != got[k]][:2]})"
        )
    for name, p in _trainable(model):
        p.copy_(saved[name])


def _progress(enabled: bool, total: int) -> Any:
    """A rich progress bar on a terminal; otherwise nothing (evaluations print plain lines)."""
    if not enabled or not sys.stderr.isatty():
        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        transient=False,
    )


def fit(
    model: nn.Module,
    config: TrainConfig,
    split: TokenSplit,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[StepEvent], None] | None = None,
    export: Callable[[nn.Module], Transformer] = lambda m: m,  # type: ignore[assignment,return-value]
    mode: str = "pretrain",
    record: dict[str, Any] | None = None,
    save_trainable: bool = False,
) -> tuple[Transformer, TrainResult]:
    """Optimise ``model`` (its parameters with ``requires_grad``) on ``split`` under ``config``.

    ``export(model)`` is the :class:`Transformer` that checkpoints hold (LoRA: adapters merged).
    With ``save_trainable`` the parameters being trained are also saved by name in ``last/`` and
    restored from there on resume (needed when ``export`` is not invertible, as for LoRA).
    """
    base = export(model)
    mcfg = base.config
    T = mcfg.context
    out_dir = Path(out) if out is not None else None
    record = config.to_dict() if record is None else record
    threads = config.threads or default_threads()
    opt = _optimizer(model, config)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params = [p for p in model.parameters() if p.requires_grad]
    state: dict[str, Any] = {
        "step": 0,
        "best_val": math.inf,
        "best_step": 0,
        "bad_evals": 0,
        "recent": [],
        "evals": [],
        "train_time": 0.0,
        "stopped_early": False,
    }
    if (
        not resume
        and out_dir is not None
        and any((out_dir / name).exists() for name in ("summary.json", "last", "best"))
    ):
        raise ConfigError(
            f"{str(out_dir)!r} already holds a run; pass --resume (resume=True) to continue it, "
            "or choose another output directory"
        )
    if resume:
        if out_dir is None or not (out_dir / "last" / "train_state.json").is_file():
            raise DataError(f"cannot resume: no resumable checkpoint in {str(out_dir)!r}/last")
        saved = json.loads((out_dir / "last" / "config.json").read_text()).get("train")
        if saved != record:
            raise ConfigError(f"cannot resume {out_dir}: its config differs from this run's config")
        if save_trainable:
            _restore_trainable(model, out_dir / "last")
        else:
            last, _ = load_checkpoint(out_dir / "last")
            base.load_state_dict(last.state_dict())
        state.update(load_optimizer_state(out_dir / "last", opt))
        if state["best_val"] is None:
            state["best_val"] = math.inf
        if not config.threads:  # bit-identical resumption needs the same thread count
            threads = int(state.get("threads", threads))
    state["threads"] = threads
    curve_path = out_dir / "loss_curve.jsonl" if out_dir is not None else None
    if curve_path is not None:
        out_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        kept = []
        if resume and curve_path.exists():
            kept = [
                ln
                for ln in curve_path.read_text().splitlines()
                if ln and json.loads(ln)["step"] <= state["step"]
            ]
        curve_path.write_text("".join(ln + "\n" for ln in kept))
    best_state = {k: v.clone() for k, v in base.state_dict().items()}
    if resume and out_dir is not None and (out_dir / "best").is_dir():
        best_state = load_checkpoint(out_dir / "best")[0].state_dict()

    def save_last() -> None:
        if out_dir is not None:
            saved_state = dict(state)
            if not math.isfinite(saved_state["best_val"]):
                saved_state["best_val"] = None  # JSON has no infinity
            save_checkpoint(
                out_dir / "last",
                export(model),
                train_config=record,
                optimizer=opt,
                train_state=saved_state,
                trainable=dict(_trainable(model)) if save_trainable else None,
            )
            # the base module shares its parameters with ``model``; optimizer indices refer to them

    # Transformer.loss (a peft wrapper forwards the attribute to the model it adapts)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = model.loss  # type: ignore[assignment]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.train()
    curve = curve_path.open("a") if curve_path is not None else None
    try:
        with _progress(progress, config.steps) as bar:
            task = (
                bar.add_task("train", total=config.steps, completed=state["step"], info="")
                if bar is not None
                else None
            )
            while state["step"] < config.steps and not state["stopped_early"]:
                step = state["step"]
                lr = lr_at(
                    step,
                    lr=config.lr,
                    steps=config.steps,
                    warmup_steps=config.warmup_steps,
                    min_lr_ratio=config.min_lr_ratio,
                )
                for g in opt.param_groups:
                    g["lr"] = lr
                x, y = sample_batch(
                    split.train,
                    context=T,
                    batch_size=config.batch_size,
                    seed=config.seed,
                    step=step,
                )
                t0 = time.perf_counter()
                loss = loss_fn(x, y)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    save_last()
                    where = (
                        f"; the last finite state was saved to {out_dir / 'last'}"
                        if out_dir
                        else ""
                    )
                    raise TrainingDiverged(
                        f"loss became {loss_value} at step {step}{where}; lower lr or set grad_clip"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                opt.step()
                state["train_time"] += time.perf_counter() - t0
                state["step"] = step + 1
                state["recent"] = (state["recent"] + [loss_value])[-config.eval_every :]
                tokens = state["step"] * config.tokens_per_step
                line: dict[str, Any] = {
                    "step": state["step"],
                    "tokens": tokens,
                    "loss": loss_value,
                    "lr": lr,
                }
                is_eval = state["step"] % config.eval_every == 0 or state["step"] == config.steps
                if is_eval:
                    val = evaluate(model, split.val, context=T, max_tokens=config.eval_tokens)
                    train_loss = float(np.mean(state["recent"]))
                    line.update(val_loss=val, train_loss=train_loss)
                    state["evals"].append([state["step"], tokens, train_loss, val])
                    if progress and bar is None:
                        rate = tokens / max(state["train_time"], 1e-9)
                        eta = (config.steps - state["step"]) * config.tokens_per_step / rate
                        print(
                            f"step {state['step']}/{config.steps}  train {train_loss:.4f}  "
                            f"val {val:.4f}  {rate / 1e3:.1f}k tok/s  ETA {eta:.0f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                    if val < state["best_val"]:
                        state.update(best_val=val, best_step=state["step"], bad_evals=0)
                        best = export(model)
                        best_state = {k: v.detach().clone() for k, v in best.state_dict().items()}
                        if out_dir is not None:
                            save_checkpoint(out_dir / "best", best, train_config=record)
                    else:
                        state["bad_evals"] += 1
                        if config.patience and state["bad_evals"] >= config.patience:
                            state["stopped_early"] = True
                if curve is not None:
                    curve.write(json.dumps(line) + "\n")
                    curve.flush()
                if config.checkpoint_every and state["step"] % config.checkpoint_every == 0:
                    save_last()
                if bar is not None:
                    rate = tokens / max(state["train_time"], 1e-9)
                    bar.update(
                        task,
                        completed=state["step"],
                        info=f"loss {loss_value:.3f}  {rate / 1e3:.1f}k tok/s",
                    )
                if callback is not None:
                    callback(
                        StepEvent(
                            step=state["step"],
                            tokens=tokens,
                            loss=loss_value,
                            lr=lr,
                            val_loss=line.get("val_loss"),
                        )
                    )
        save_last()
    finally:
        if curve is not None:
            curve.close()
        torch.set_num_threads(old_threads)
    final = export(model)
    final_val = state["evals"][-1][3]
    final.load_state_dict(best_state)
    final.eval()
    result = TrainResult(
        n_params=n_params(mcfg),
        n_params_non_embedding=n_params_non_embedding(mcfg),
        n_params_trainable=n_trainable,
        tokens_seen=state["step"] * config.tokens_per_step,
        steps=state["step"],
        final_train_loss=float(np.mean(state["recent"])),
        final_val_loss=final_val,
        best_val_loss=state["best_val"],
        best_step=state["best_step"],
        stopped_early=state["stopped_early"],
        tokens_per_second=state["step"] * config.tokens_per_step / max(state["train_time"], 1e-9),
        flops_per_token=flops_per_token(mcfg),
        threads=threads,
        mode=mode,
        evals=tuple((int(s), int(t), float(a), float(b)) for s, t, a, b in state["evals"]),
        config=record,
    )
    if out_dir is not None:
        atomic_write_json(out_dir / "summary.json", result.to_dict())
    return final, result


def train(
    config: TrainConfig,
    *,
    tokens: Any = None,
    val_tokens: Any = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[StepEvent], None] | None = None,
) -> tuple[Transformer, TrainResult]:
    """Train a :class:`Transformer` from scratch; returns (model at the validation optimum, result).

    Parameters
    ----------
    config : TrainConfig
        Model shape, data, optimiser and schedule (frozen).
    tokens, val_tokens : array of int, optional
        Token ids to train on (e.g. a process's symbol sequence); by default ``config.data.corpus``
        is loaded and its tail held out. With ``val_tokens`` the validation set is given explicitly.
    out : path, optional
        Run directory (checkpoints, loss curve, summary). Without it nothing is written.
    resume : bool
        Continue from ``out/last`` (same config required).
    callback : callable, optional
        Called with a :class:`StepEvent` after every step.

    Raises
    ------
    DataError, ConfigError, TrainingDiverged
    """
    split = prepare_split(config, tokens, val_tokens)
    model = Transformer(config.model, seed=config.seed)
    return fit(model, config, split, out=out, resume=resume, progress=progress, callback=callback)
