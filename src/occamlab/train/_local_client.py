"""The local implementation of the training-client protocol: a :class:`Transformer` with LoRA
adapters (peft, :func:`~occamlab.train.finetune`'s wrapping) and torch's AdamW, in this process.

Each call runs when it is submitted, so its future is already complete when returned: futures
complete in submission order trivially. The arithmetic is the fine-tuning engine's: the same
LoRA initialisation from the seed, the same fused AdamW kernel, the same global-norm clipping
(``tests/train/test_client.py`` checks a LoRA fine-tune driven through this client against
:func:`~occamlab.train.finetune` step by step).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from occamlab.errors import ConfigError, DataError, check_seed

from ._checkpoint import load_optimizer_state, save_training_state
from ._client import (
    AdamParams,
    Datum,
    ForwardOutput,
    check_batch,
    done_future,
    weighted_loss,
)
from ._finetune import _merged, _wrap_lora, lora_targets
from ._loop import _restore_trainable
from ._model import Transformer

__all__ = ["LocalTrainingClient", "STATE_FORMAT"]

STATE_FORMAT = "occamlab.train/client-state/1"


class LocalTrainingClient:
    """A LoRA fine-tune of ``model`` on this machine (the protocol :class:`TrainingClient`).

    Parameters
    ----------
    model : Transformer
        The base model (copied; the caller's model is never modified).
    rank : int
        LoRA rank ``r`` (1 allowed); ``alpha`` defaults to ``r`` (scale 1).
    modules : str
        ``all`` (attention and MLP matrices of every block), ``attention``, ``mlp`` or a comma
        list (:func:`~occamlab.train.lora_targets`).
    seed : int
        Draws the adapters' ``A`` (``B`` starts at 0), as :func:`~occamlab.train.finetune` does.
    state_dir : path, optional
        Where :meth:`save_state` writes (``state_dir/NAME/``); without it saving is an error.
    base_model : str
        The name recorded for the base model (a checkpoint path, say).
    """

    backend = "local"

    def __init__(self, model: Transformer, *, rank: int, modules: str = "all",
                 alpha: float | None = None, seed: int = 0,
                 state_dir: str | os.PathLike[str] | None = None, base_model: str = "") -> None:
        if not isinstance(model, Transformer):
            raise ConfigError(f"LocalTrainingClient needs a Transformer, got {type(model).__name__}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"lora rank must be a positive integer, got {rank!r}")
        seed = check_seed(seed)
        self.rank = rank
        self.base_model = base_model or "local"
        self.vocab_size = model.config.vocab_size
        self._state_dir = None if state_dir is None else Path(state_dir)
        base = copy.deepcopy(model)
        base.train()
        self._model = _wrap_lora(base, rank=rank, alpha=float(rank if alpha is None else alpha),
                                 targets=lora_targets(modules), seed=seed)
        self._params = [(n, p) for n, p in self._model.named_parameters() if p.requires_grad]
        # one parameter group of matrices (every adapter is one), as the engine's decay group
        self._opt = torch.optim.AdamW([p for _, p in self._params], lr=0.0, betas=(0.9, 0.95),
                                      eps=1e-8, weight_decay=0.0, fused=True)
        self.steps = 0

    # ---- the protocol ---------------------------------------------------------------------
    def forward_backward(self, batch: list[Datum], loss: str = "cross_entropy"
                         ) -> cf.Future[ForwardOutput]:
        return self._run(self._logprobs, check_batch, batch, loss, backward=True)

    def forward(self, batch: list[Datum], loss: str = "cross_entropy"
                ) -> cf.Future[ForwardOutput]:
        return self._run(self._logprobs, check_batch, batch, loss, backward=False)

    def optim_step(self, params: AdamParams) -> cf.Future[None]:
        return self._call(self._step, params)

    def save_state(self, name: str) -> cf.Future[str]:
        return self._call(self._save, name)

    def load_state(self, path: str) -> cf.Future[None]:
        return self._call(self._load, path)

    def close(self) -> None:
        self._opt.zero_grad(set_to_none=True)

    # ---- beyond the protocol --------------------------------------------------------------
    @property
    def n_trainable(self) -> int:
        """Trained parameters (the adapters' entries)."""
        return sum(p.numel() for _, p in self._params)

    def merged(self) -> Transformer:
        """The fine-tuned model with the adapters merged in: a plain :class:`Transformer`."""
        return _merged(self._model)

    # ---- the work -------------------------------------------------------------------------
    @staticmethod
    def _call(fn: Any, *args: Any) -> cf.Future[Any]:
        try:
            return done_future(fn(*args))
        except Exception as exc:  # the protocol raises from result(), as a service does
            return done_future(error=exc)

    def _run(self, fn: Any, check: Any, batch: Any, loss: str, *, backward: bool
             ) -> cf.Future[Any]:
        try:
            items = check(batch, loss)
        except ConfigError as exc:
            return done_future(error=exc)
        return self._call(fn, items, backward)

    def _logprobs(self, batch: list[Datum], backward: bool) -> ForwardOutput:
        outs: list[np.ndarray] = []
        with torch.set_grad_enabled(backward):
            for group in _same_length_groups(batch):
                x = torch.from_numpy(np.stack([batch[i].tokens for i in group]))
                y = torch.from_numpy(np.stack([batch[i].targets for i in group]))
                if int(max(x.max(), y.max())) >= self.vocab_size:
                    raise DataError(f"a token id is >= the model's vocabulary ({self.vocab_size})")
                w = torch.from_numpy(np.stack([batch[i].weight_array() for i in group]))
                logits = self._model(x)  # (B, T, V)
                lp = F.log_softmax(logits.float(), dim=-1).gather(-1, y[..., None])[..., 0]
                if backward:
                    (-(lp * w).sum()).backward()
                outs.extend(lp.detach().numpy().copy())
        order = [i for g in _same_length_groups(batch) for i in g]
        logprobs: list[np.ndarray] = [np.empty(0)] * len(batch)
        for i, lp_i in zip(order, outs, strict=True):
            logprobs[i] = lp_i
        return ForwardOutput(tuple(logprobs), weighted_loss(batch, tuple(logprobs)))

    def _step(self, params: AdamParams) -> None:
        if not isinstance(params, AdamParams):
            raise ConfigError(f"optim_step needs AdamParams, got {type(params).__name__}")
        for g in self._opt.param_groups:
            g.update(lr=params.learning_rate, betas=(params.beta1, params.beta2), eps=params.eps,
                     weight_decay=params.weight_decay)
        if params.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_([p for _, p in self._params], params.grad_clip_norm)
        self._opt.step()
        self._opt.zero_grad(set_to_none=True)
        self.steps += 1

    def _save(self, name: str) -> str:
        if self._state_dir is None:
            raise ConfigError("this LocalTrainingClient has no state_dir to save states in")
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"state name must be a plain file name, got {name!r}")
        path = save_training_state(
            self._state_dir / name, optimizer=self._opt, trainable=dict(self._params),
            train_state={"format": STATE_FORMAT, "optimizer_steps": self.steps,
                         "rank": self.rank, "base_model": self.base_model})
        return str(path)

    def _load(self, path: str) -> None:
        folder = Path(path)
        _restore_trainable(self._model, folder)
        state = load_optimizer_state(folder, self._opt)  # moments and step counts: not dropped
        if state.get("format") != STATE_FORMAT or state.get("rank") != self.rank:
            raise DataError(f"{folder}: not a saved state of a rank-{self.rank} training client")
        self.steps = int(state["optimizer_steps"])
        self._opt.zero_grad(set_to_none=True)


def _same_length_groups(batch: list[Datum]) -> list[list[int]]:
    """Indices of the batch grouped by sequence length (one tensor per group), first-seen order."""
    groups: dict[int, list[int]] = {}
    for i, d in enumerate(batch):
        groups.setdefault(d.n_tokens, []).append(i)
    return list(groups.values())
