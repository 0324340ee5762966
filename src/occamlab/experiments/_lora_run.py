"""One ``lora-finetune`` run: open a training client, resume, train, measure, keep the ledger.

See :mod:`occamlab.experiments.lora_finetune` for what is measured. The loop submits each step's
``forward_backward`` and ``optim_step`` together (the protocol executes them in order) and waits
for both; every ``save_every`` steps it saves the client's state and records the resume point in
``STORE/states/<id>/`` (:class:`~._clients.RunState`); the token ledger there is rewritten after
every request, so it counts what every attempt trained, including steps a kill made it redo.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from occamlab._io import atomic_write_json, atomic_write_text
from occamlab.errors import ConfigError

from ._clients import ClientSlots, RunState, backoff
from ._lora_data import (
    KNOWN_MODELS,
    RunData,
    Tokenizer,
    bytes_tokenizer,
    corpus_bytes,
    hf_tokenizer,
    prepare,
)
from ._refs import resolve_ref
from ._tinker import ServiceError

__all__ = ["train_and_measure", "LEDGER_KEYS"]

LEDGER_KEYS = ("tokens_trained", "tokens_sampled", "tokens_evaluated")


class _Run:
    """The state of one run's execution (one attempt; see the module docstring)."""

    def __init__(self, config: Any, run_dir: Path) -> None:
        self.cfg, self.run_dir = config, run_dir
        self.state = RunState(run_dir)
        saved = self.state.ledger()
        self.ledger = {k: int(saved.get(k, 0)) for k in LEDGER_KEYS}
        self.losses: list[list[float]] = []  # [step, loss, lr] of the steps done
        self.evals: list[list[float]] = []  # [step, tokens, held-out nll]
        self.service: Any = None
        self.client: Any = None
        self.model: Any = None
        self.n_params: float | None = config.n_params
        self.resumed_from = 0

    # ---- opening -----------------------------------------------------------------------------
    def open_client(self) -> None:
        cfg = self.cfg
        if cfg.training_backend == "local":
            from occamlab.train import LocalTrainingClient, load_checkpoint, n_params_non_embedding

            if self.model is None:
                self.model, mcfg = load_checkpoint(resolve_ref(cfg.base_model, self.run_dir))
                if self.n_params is None:
                    self.n_params = float(n_params_non_embedding(mcfg))
            self.client = LocalTrainingClient(
                self.model, rank=cfg.lora_rank, modules=cfg.lora_modules, seed=cfg.seed,
                state_dir=self.state.dir / "local", base_model=cfg.base_model)
            return
        from ._tinker import TinkerService, TinkerTrainingClient

        if self.service is None:
            self.service = TinkerService(user_metadata={"occamlab_run": self.state.run_id})
            offered = self.service.models()
            if cfg.base_model not in offered:
                raise ServiceError(f"base model {cfg.base_model!r} is not offered by the service "
                                   f"for training; it offers: {', '.join(offered) or 'none'}")
            if self.n_params is None:
                self.n_params = KNOWN_MODELS.get(cfg.base_model)
        self.client = TinkerTrainingClient(self.service, cfg.base_model, rank=cfg.lora_rank,
                                           seed=cfg.seed, modules=cfg.lora_modules)

    def restore(self) -> int:
        """Load the last saved state (weights and optimizer) if there is one; its step."""
        point = self.state.resume_point()
        if not point:
            self.losses, self.evals = [], []
            return 0
        self.client.load_state(point["path"]).result()
        self.losses = [list(x) for x in point["losses"]]
        self.evals = [list(x) for x in point["evals"]]
        return int(point["step"])

    def tokenizer(self) -> Tokenizer:
        spec = self.cfg.tokenizer
        if spec.startswith("hf:"):
            return hf_tokenizer(spec[3:])
        if spec == "bytes" or self.cfg.training_backend == "local":
            vocab = getattr(getattr(self.model, "config", None), "vocab_size", 256)
            if vocab < 256:
                raise ConfigError(f"the byte tokenizer needs a vocabulary of 256; the base model "
                                  f"{self.cfg.base_model!r} has {vocab}")
            return bytes_tokenizer()
        return hf_tokenizer(self.cfg.base_model, obj=self.client.tokenizer())

    def prepare(self) -> RunData:
        cfg = self.cfg
        text = corpus_bytes(cfg.data, cfg.max_bytes)
        return prepare(text, self.tokenizer(), val_fraction=cfg.val_fraction,
                       context=cfg.context, n_train_windows=cfg.steps * cfg.batch_size,
                       n_heldout_windows=cfg.n_heldout_windows, seed=cfg.seed)

    # ---- the work ----------------------------------------------------------------------------
    def _count(self, key: str, n: int) -> None:
        self.ledger[key] += int(n)
        self.state.record_ledger(self.ledger)

    def train(self, data: RunData, start: int) -> None:
        from occamlab.train import AdamParams, lr_at

        cfg = self.cfg
        per_step = cfg.batch_size * cfg.context
        for step in range(start, cfg.steps):
            lr = lr_at(step, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                       min_lr_ratio=cfg.min_lr_ratio)
            fb = self.client.forward_backward(data.batch(step, cfg.batch_size))
            opt = self.client.optim_step(AdamParams(
                learning_rate=lr, beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps,
                weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip))
            out = fb.result()
            opt.result()
            self._count("tokens_trained", per_step)
            done = step + 1
            self.losses.append([done, float(out.loss), lr])
            self._write_line({"step": done, "tokens": done * per_step, "loss": float(out.loss),
                              "lr": lr})
            if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                self.evaluate(data, done)
            if cfg.save_every and done % cfg.save_every == 0 and done < cfg.steps:
                self.save(done)

    def evaluate(self, data: RunData, step: int) -> np.ndarray:
        """Score every held-out window (all requests submitted first); per-window mean NLL."""
        futures = [self.client.forward(b) for b in data.heldout_batches(self.cfg.eval_batch)]
        outs = [f.result() for f in futures]
        nll = np.array([-float(np.mean(lp, dtype=np.float64)) for o in outs for lp in o.logprobs])
        self._count("tokens_evaluated", sum(o.n_tokens for o in outs))
        tokens = step * self.cfg.batch_size * self.cfg.context
        self.evals.append([step, tokens, float(nll.mean())])
        self._write_line({"step": step, "tokens": tokens, "heldout_nll": float(nll.mean())})
        return nll

    def save(self, step: int) -> None:
        path = self.client.save_state(f"{self.state.run_id}-step{step}").result()
        old = self.state.resume_point()
        self.state.record_resume_point({
            "step": step, "path": path, "backend": self.cfg.training_backend,
            "base_model": self.cfg.base_model, "losses": self.losses, "evals": self.evals})
        local = self.state.dir / "local"
        if old and old.get("path") != path and Path(old["path"]).parent == local:
            shutil.rmtree(old["path"], ignore_errors=True)  # the previous local state

    # ---- the metrics file --------------------------------------------------------------------
    def _write_line(self, row: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def rewrite_metrics(self) -> None:
        """``metrics.jsonl`` as an uninterrupted run up to the resume point would have it."""
        per_step = self.cfg.batch_size * self.cfg.context
        evals = {int(e[0]): e for e in self.evals}
        atomic_write_text(self.run_dir / "metrics.jsonl", "", fsync=False)
        for step, loss, lr in self.losses:
            self._write_line({"step": int(step), "tokens": int(step) * per_step, "loss": loss,
                              "lr": lr})
            if int(step) in evals:
                e = evals[int(step)]
                self._write_line({"step": int(e[0]), "tokens": int(e[1]), "heldout_nll": e[2]})

    # ---- driving -----------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        """Train and measure, recovering transient service failures from the last saved state
        (``service_retries`` times, waiting 2, 4, 8, ... s); returns the run's result."""
        cfg = self.cfg
        data: RunData | None = None
        recoveries = 0
        first = True
        while True:
            try:
                self.open_client()
                start = self.restore()
                if first:
                    self.resumed_from, first = start, False
                if data is None:
                    data = self.prepare()
                self.rewrite_metrics()
                self.train(data, start)
                nll = self.evaluate(data, cfg.steps)
                break
            except ServiceError as exc:
                if not exc.transient or recoveries >= cfg.service_retries:
                    raise
                recoveries += 1
                self.close_client()
                time.sleep(backoff(recoveries))
        atomic_write_json(self.run_dir / "heldout.json", {
            "window_nll": nll.tolist(), "context": cfg.context, "tokenizer": data.tokenizer,
            "data": cfg.data}, indent=None)
        return self.result(nll, data, recoveries)

    def result(self, nll: np.ndarray, data: RunData, recoveries: int) -> dict[str, Any]:
        cfg = self.cfg
        tail = [x[1] for x in self.losses[-min(10, len(self.losses)):]]
        return {
            "base_model": cfg.base_model, "training_backend": cfg.training_backend,
            "lora_rank": cfg.lora_rank, "tokenizer": data.tokenizer, "n_params": self.n_params,
            "finetune_tokens": cfg.steps * cfg.batch_size * cfg.context, "steps": cfg.steps,
            "lr": cfg.lr, "heldout_nll": float(nll.mean()),
            "heldout_nll_se": float(nll.std(ddof=1) / math.sqrt(nll.size)) if nll.size > 1
            else None,
            "heldout_tokens": int(nll.size * cfg.context), "heldout_windows": int(nll.size),
            "final_train_loss": float(np.mean(tail)),
            "n_trainable": getattr(self.client, "n_trainable", None),
            "resumed_from_step": self.resumed_from, "service_recoveries": recoveries,
            **self.ledger,
        }

    def close_client(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None

    def close(self, ok: bool) -> None:
        self.close_client()
        if self.service is not None:
            self.service.close("success" if ok else "errored")
        if ok:  # the result holds the ledger now; nothing left to resume
            shutil.rmtree(self.state.dir, ignore_errors=True)


def train_and_measure(config: Any, run_dir: Path) -> dict[str, Any]:
    """Run ``config`` into ``run_dir`` (a slot of the store's client limit held on Tinker)."""
    run = _Run(config, run_dir)
    slots = ClientSlots.for_run(run.state) if config.training_backend == "tinker" else None
    ok = False
    with slots.hold() if slots is not None else contextlib.nullcontext(0.0):
        try:
            result = run.execute()
            ok = True
        finally:
            run.close(ok)
    return result
