"""The training loop: AdamW, warm-up + cosine, clipping, evaluation, early stopping, resume.

A run directory ``out`` holds::

    best/             checkpoint at the validation optimum (model.safetensors + config.json)
    last/             resumable checkpoint (adds optimizer.safetensors + train_state.json)
    snapshots/step-N/ the model at step N, kept, for each N of ``config.snapshot_steps``
    loss_curve.jsonl  one line per step: step, tokens, loss, lr (and val_loss, train_loss on evals)
    summary.json      TrainResult.to_dict()

Batches depend only on ``(seed, step)`` and the state saved in ``last/`` is complete, so a run
killed and resumed from ``last/`` ends with exactly the losses of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, DataError

from ._checkpoint import load_checkpoint, load_optimizer_state, load_trainable, save_checkpoint
from ._config import TrainConfig
from ._data import TokenSplit, sample_batch
from ._model import Transformer, flops_per_token, n_params, n_params_non_embedding
from ._prepare import default_threads, evaluate, prepare_split, resolve_device
from ._progress import Progress
from ._result import StepEvent, TrainingDiverged, TrainResult, lr_at
from ._state import LoopState, LossCurve

__all__ = ["train", "fit", "snapshot_path"]


def snapshot_path(out: str | os.PathLike[str], step: int) -> Path:
    """Where a run in ``out`` keeps its model at ``step`` (``TrainConfig.snapshot_steps``)."""
    return Path(out) / "snapshots" / f"step-{int(step)}"


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


def _same_model(model: nn.Module) -> Transformer:
    """The model being trained is the one checkpoints hold (everything but LoRA)."""
    if not isinstance(model, Transformer):
        raise TypeError(f"fit: pass export= for a {type(model).__name__}, not a Transformer")
    return model


@dataclass(frozen=True)
class _Fit:
    """What stays fixed during one :func:`fit`: model, optimizer, data, run directory."""

    model: nn.Module
    config: TrainConfig
    split: TokenSplit
    out_dir: Path | None
    record: dict[str, Any]
    export: Callable[[nn.Module], Transformer]
    save_trainable: bool
    optimizer: torch.optim.AdamW
    params: list[nn.Parameter]
    # Transformer.loss (a peft wrapper forwards the attribute to the model it adapts)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    context: int
    device: torch.device


def _check_fresh(out_dir: Path | None, resume: bool) -> None:
    """Refuse to overwrite a run directory unless resuming it."""
    if resume or out_dir is None:
        return
    if any((out_dir / name).exists() for name in ("summary.json", "last", "best")):
        raise ConfigError(
            f"{str(out_dir)!r} already holds a run; pass --resume (resume=True) to continue it, "
            "or choose another output directory"
        )


def _resume(run: _Fit, base: Transformer, threads: int) -> LoopState:
    """Load ``out/last`` into the model and the optimizer; returns the saved loop state."""
    last = run.out_dir / "last" if run.out_dir is not None else None
    if last is None or not (last / "train_state.json").is_file():
        raise DataError(f"cannot resume: no resumable checkpoint in {str(run.out_dir)!r}/last")
    saved = json.loads((last / "config.json").read_text()).get("train")
    if saved is not None and "device" not in saved and "device" in run.record:
        saved = {**saved, "device": run.record["device"]}  # written before configs had a device
    if saved != run.record:
        raise ConfigError(f"cannot resume {run.out_dir}: its config differs from this run's config")
    if run.save_trainable:
        _restore_trainable(run.model, last)
    else:
        base.load_state_dict(load_checkpoint(last)[0].state_dict())
    state = LoopState.from_train_state(load_optimizer_state(last, run.optimizer), threads=threads)
    if run.config.threads:  # else the saved count: bit-identical resumption needs it
        state.threads = run.config.threads
    return state


def _initial_best(run: _Fit, base: Transformer, resume: bool) -> dict[str, torch.Tensor]:
    """The weights to return if no evaluation improves: ``out/best`` on resume, else the start."""
    if resume and run.out_dir is not None and (run.out_dir / "best").is_dir():
        return load_checkpoint(run.out_dir / "best")[0].state_dict()
    return {k: v.clone() for k, v in base.state_dict().items()}


def _save_last(run: _Fit, state: LoopState) -> None:
    """Write the resumable checkpoint ``out/last`` (model, optimizer, loop state)."""
    if run.out_dir is None:
        return
    # the exported module shares its parameters with ``model``: optimizer indices refer to them
    save_checkpoint(
        run.out_dir / "last",
        run.export(run.model),
        train_config=run.record,
        optimizer=run.optimizer,
        train_state=state.to_train_state(),
        trainable=dict(_trainable(run.model)) if run.save_trainable else None,
    )


def _train_step(run: _Fit, state: LoopState) -> tuple[float, float]:
    """One optimisation step (schedule, batch, loss, backward, clipping, AdamW).

    Returns ``(batch loss, learning rate)``; a non-finite loss saves ``out/last`` (while the
    weights are still finite: never a NaN checkpoint) and raises :class:`TrainingDiverged`.
    """
    cfg = run.config
    lr = lr_at(state.step, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
               min_lr_ratio=cfg.min_lr_ratio)
    for g in run.optimizer.param_groups:
        g["lr"] = lr
    x, y = sample_batch(run.split.train, context=run.context, batch_size=cfg.batch_size,
                        seed=cfg.seed, step=state.step)
    if run.device.type != "cpu":
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    t0 = time.perf_counter()
    loss = run.loss_fn(x, y)
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        where = ""
        if run.out_dir and all(bool(torch.isfinite(p).all()) for p in run.params):
            _save_last(run, state)
            where = f"; the last finite state was saved to {run.out_dir / 'last'}"
        elif run.out_dir:  # never overwrite a resumable checkpoint with non-finite weights
            where = (f"; the weights are no longer finite, so {run.out_dir / 'last'} was not "
                     "updated (it holds the last periodic checkpoint, if any)")
        raise TrainingDiverged(
            f"loss became {loss_value} at step {state.step}{where}; lower lr or set grad_clip"
        )
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.optimizer.step()
    state.train_time += time.perf_counter() - t0
    state.record_loss(loss_value, window=cfg.eval_every)
    return loss_value, lr


def _evaluate_step(
    run: _Fit, state: LoopState, best: dict[str, torch.Tensor], bar: Progress
) -> dict[str, float]:
    """Evaluate at the current step; a new optimum is kept in ``best`` and saved to ``out/best``.

    Returns the loss-curve fields ``val_loss`` and ``train_loss``.
    """
    cfg = run.config
    tokens = state.step * cfg.tokens_per_step
    val = evaluate(run.model, run.split.val, context=run.context, max_tokens=cfg.eval_tokens)
    improved = state.record_eval(tokens, val, patience=cfg.patience)
    bar.evaluation(state, cfg)
    if improved:
        model = run.export(run.model)
        best.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        if run.out_dir is not None:
            save_checkpoint(run.out_dir / "best", model, train_config=run.record)
    return {"val_loss": val, "train_loss": state.evals[-1][2]}


def _run_steps(
    run: _Fit,
    state: LoopState,
    best: dict[str, torch.Tensor],
    curve: LossCurve,
    bar: Progress,
    callback: Callable[[StepEvent], None] | None,
) -> None:
    """Step until ``config.steps`` or early stopping: evaluate, write the curve, checkpoint."""
    cfg = run.config
    while state.step < cfg.steps and not state.stopped_early:
        loss, lr = _train_step(run, state)
        tokens = state.step * cfg.tokens_per_step
        line: dict[str, Any] = {"step": state.step, "tokens": tokens, "loss": loss, "lr": lr}
        if state.step % cfg.eval_every == 0 or state.step == cfg.steps:
            line.update(_evaluate_step(run, state, best, bar))
        curve.write(line)
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            _save_last(run, state)
        if state.step in cfg.snapshot_steps and run.out_dir is not None:
            save_checkpoint(snapshot_path(run.out_dir, state.step), run.export(run.model),
                            train_config=run.record)
        bar.step(state, cfg.tokens_per_step, loss)
        if callback is not None:
            callback(StepEvent(step=state.step, tokens=tokens, loss=loss, lr=lr,
                               val_loss=line.get("val_loss")))


def _result(
    run: _Fit, state: LoopState, best: dict[str, torch.Tensor], *, mode: str
) -> tuple[Transformer, TrainResult]:
    """The model at the validation optimum (eval mode) and the run's summary."""
    cfg = run.config
    final = run.export(run.model)
    final.load_state_dict(best)
    final.eval()
    mcfg = final.config
    tokens = state.step * cfg.tokens_per_step
    result = TrainResult(
        n_params=n_params(mcfg),
        n_params_non_embedding=n_params_non_embedding(mcfg),
        n_params_trainable=sum(p.numel() for p in run.params),
        tokens_seen=tokens,
        steps=state.step,
        final_train_loss=state.train_loss,
        final_val_loss=state.evals[-1][3],
        best_val_loss=state.best_val_loss,
        best_step=state.best_step,
        stopped_early=state.stopped_early,
        tokens_per_second=tokens / max(state.train_time, 1e-9),
        flops_per_token=flops_per_token(mcfg),
        threads=state.threads,
        mode=mode,
        evals=tuple(state.evals),
        config=run.record,
        device=str(run.device),
    )
    if run.out_dir is not None:
        atomic_write_json(run.out_dir / "summary.json", result.to_dict())
    return final, result


def fit(
    model: nn.Module,
    config: TrainConfig,
    split: TokenSplit,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[StepEvent], None] | None = None,
    export: Callable[[nn.Module], Transformer] = _same_model,
    mode: str = "pretrain",
    record: dict[str, Any] | None = None,
    save_trainable: bool = False,
) -> tuple[Transformer, TrainResult]:
    """Optimise ``model`` (its parameters with ``requires_grad``) on ``split`` under ``config``.

    The engine behind :func:`train` and :func:`~occamlab.train.finetune`.

    Parameters
    ----------
    model : nn.Module
        A :class:`Transformer`, or a module wrapping one (LoRA); trained in place.
    config : TrainConfig
        Optimiser, schedule, evaluation and checkpoint settings (``config.model`` unused).
    split : TokenSplit
        Training and validation tokens.
    out, resume, progress, callback
        As in :func:`train`.
    export : callable
        ``export(model)`` is the :class:`Transformer` checkpoints hold (LoRA: adapters merged);
        by default ``model`` itself.
    mode : str
        Recorded in the result (``"pretrain"``, ``"full"``, ``"lora-r8"``, ...).
    record : dict, optional
        The configuration stored in checkpoints and the result (default ``config.to_dict()``);
        a resumed run must have the same.
    save_trainable : bool
        Also save the trained parameters by name in ``out/last`` and restore them from there on
        resume (needed when ``export`` is not invertible, as for LoRA).

    Returns
    -------
    (Transformer, TrainResult)
        The model at the validation optimum (eval mode) and the run's summary.
    """
    device = resolve_device(config.device)
    model.to(device)
    base = export(model)
    run = _Fit(
        model=model, config=config, split=split, out_dir=None if out is None else Path(out),
        record=config.to_dict() if record is None else record, export=export,
        save_trainable=save_trainable, optimizer=_optimizer(model, config),
        params=[p for p in model.parameters() if p.requires_grad],
        loss_fn=model.loss, context=base.config.context,  # type: ignore[arg-type]
        device=device,
    )
    _check_fresh(run.out_dir, resume)
    threads = config.threads or default_threads()
    state = _resume(run, base, threads) if resume else LoopState(threads=threads)
    best = _initial_best(run, base, resume)
    curve_path = None if run.out_dir is None else run.out_dir / "loss_curve.jsonl"
    curve = LossCurve(curve_path, keep_until=state.step if resume else None)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(state.threads)
    model.train()
    try:
        with Progress(progress, config.steps, state.step) as bar:
            _run_steps(run, state, best, curve, bar, callback)
        _save_last(run, state)
    finally:
        curve.close()
        torch.set_num_threads(old_threads)
    return _result(run, state, best, mode=mode)


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
