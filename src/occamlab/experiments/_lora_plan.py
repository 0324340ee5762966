"""The token plan of ``lora-finetune`` runs: what a sweep will train and evaluate, before it runs.

Counts in tokens are exact: D_F and the held-out size are given in tokens. What needs the
tokenizer is whether the corpus holds them: with ``bytes`` that is exact; for a service model's
tokenizer (not at hand before a run: it comes from the service) the plan estimates
``bytes / 4`` tokens and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from occamlab._render import Rendered, Table, fmt
from occamlab.errors import OccamError

from ._lora_data import BYTES_PER_TOKEN_GUESS, is_remote

__all__ = ["token_plan", "corpus_size", "SweepPlan", "build_plan"]


@functools.lru_cache(maxsize=64)
def corpus_size(spec: str, max_bytes: int | None) -> int | None:
    """Bytes of the corpus a run reads (its first ``max_bytes``), ``None`` if unknown here
    (cached: listing a corpus's files walks a folder tree, once per sweep is enough)."""
    from occamlab.train import corpus_files

    if spec.startswith("hf:") or spec.endswith(".npy"):
        return None
    try:
        files = corpus_files(spec)
    except OccamError:
        return None
    total = sum(f.stat().st_size + 1 for f in files)
    return total if max_bytes is None else min(total, max_bytes)


def _evaluations(config: Any) -> int:
    steps = config.steps
    if not config.eval_every:
        return 1
    return steps // config.eval_every + (0 if steps % config.eval_every == 0 else 1)


def token_plan(config: Any) -> dict[str, Any]:
    """One run's plan: steps, tokens trained/evaluated/sampled, and corpus availability."""
    per_step = config.batch_size * config.context
    trained = config.steps * per_step
    evaluated = _evaluations(config) * config.n_heldout_windows * config.context
    exact = config.tokenizer == "bytes" or (config.tokenizer == "auto"
                                            and config.training_backend == "local")
    size = corpus_size(config.data, config.max_bytes)
    available = None
    if size is not None:
        train_bytes = size - int(size * config.val_fraction)
        available = int(train_bytes if exact else train_bytes / BYTES_PER_TOKEN_GUESS)
    if exact:
        note = "exact (byte tokenizer)"
    elif config.tokenizer == "auto":
        note = (f"corpus tokens estimated at {BYTES_PER_TOKEN_GUESS:g} bytes per token: a service "
                "model's tokenizer is not at hand before its run starts (tokens to train and "
                "evaluate are exact)")
    else:
        note = f"corpus tokens estimated at {BYTES_PER_TOKEN_GUESS:g} bytes per token"
    return {"steps": config.steps, "tokens_trained": trained, "tokens_evaluated": evaluated,
            "tokens_sampled": 0, "corpus_tokens": available, "exact": exact, "note": note,
            "enough_data": None if available is None else available > trained}


@dataclass(frozen=True)
class SweepPlan(Rendered):
    """A sweep's plan before it runs: one row per run (tokens to train and to evaluate) and the
    totals; ``estimated`` notes say which numbers are estimates and why."""

    experiment: str
    n_runs: int
    rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    tokens_trained: int = 0
    tokens_evaluated: int = 0
    tokens_sampled: int = 0
    remote: bool = False
    cost: float | None = None
    currency: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def _tables(self) -> list[Table]:
        cols = ["id", "backend", "base model", "rank", "D_F", "lr", "steps", "tokens trained",
                "tokens evaluated"]
        priced = self.currency is not None
        body = [[r["id"], r["backend"], r["base_model"], r["rank"], r["finetune_tokens"],
                 fmt(r["lr"]), r["steps"], r["tokens_trained"], r["tokens_evaluated"]]
                + ([_money(r.get("cost"))] if priced else []) for r in self.rows]
        body.append(["total", "", "", "", "", "", "", self.tokens_trained, self.tokens_evaluated]
                    + ([_money(self.cost)] if priced else []))
        if priced:
            cols.append(f"cost ({self.currency}, estimate)")
        return [Table(f"Token plan: {self.n_runs} runs of {self.experiment}"
                      + (" (remote: trains on a paid service)" if self.remote else ""),
                      cols, body, list(self.notes))]


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def build_plan(experiment: str, runs: Sequence[Any], configs: Sequence[Any],
               prices: Any = None) -> SweepPlan:
    """The :class:`SweepPlan` of planned ``runs`` (their validated ``configs``), with the cost
    the tokens imply at ``prices`` (a :class:`~._ledger.PriceTable`) if given."""
    rows, notes = [], []
    for r, cfg in zip(runs, configs, strict=True):
        p = token_plan(cfg)
        cost = None if prices is None else prices.cost(p, cfg.base_model)
        rows.append({"id": r.id, "backend": cfg.training_backend, "base_model": cfg.base_model,
                     "rank": cfg.lora_rank, "finetune_tokens": cfg.finetune_tokens,
                     "lr": cfg.lr, **p, "cost": cost})
        if prices is not None and cost is None:
            notes.append(f"run {r.id}: no price for {cfg.base_model} (left out of the cost)")
        if p["note"] not in notes and not p["exact"]:
            notes.append(p["note"])
        if p["enough_data"] is False:
            notes.append(f"run {r.id}: the corpus has about {p['corpus_tokens']} training tokens, "
                         f"fewer than the {p['tokens_trained']} it needs")
    return SweepPlan(experiment=experiment, n_runs=len(rows), rows=tuple(rows),
                     tokens_trained=sum(r["tokens_trained"] for r in rows),
                     tokens_evaluated=sum(r["tokens_evaluated"] for r in rows),
                     tokens_sampled=0, remote=any(is_remote(c) for c in configs),
                     cost=(None if prices is None else
                           sum(r["cost"] for r in rows if r["cost"] is not None)),
                     currency=None if prices is None else prices.currency, notes=tuple(notes))
