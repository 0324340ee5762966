"""The ``lora-finetune`` experiment: one LoRA fine-tune of a base model, on either backend.

One run fine-tunes ``base_model`` with rank-``lora_rank`` adapters on ``finetune_tokens`` tokens
(D_F) of a corpus and measures the held-out mean negative log-likelihood per token, in nats, on
windows of the corpus's held-out tail (:mod:`._lora_data`). ``training_backend`` picks where the
model trains, through the training-client protocol (:mod:`occamlab.train._client`):

- ``local``: :class:`~occamlab.train.LocalTrainingClient`, the torch engine on this machine;
  ``base_model`` is a checkpoint (a folder, a run folder, or ``run:<id>/best`` in a store);
- ``tinker``: the Tinker service (``pip install 'occamlab[tinker]'``, key in ``TINKER_API_KEY``);
  ``base_model`` is one of the service's models (``meta-llama/Llama-3.2-1B``, ...).

This is independent of ``occam sweep --backend local|ray``, which picks where runs execute. The
same config runs on both backends given a base model that exists there, and both measure the same
way: every step trains on ``batch_size`` windows of ``context`` tokens with per-token weights
``1/(B T)`` (the mean loss), AdamW at the learning rate ``lr`` (LoRA's own rate: about 10x the
full fine-tuning rate is best, Schulman et al. 2025) with ``warmup_steps`` and a cosine decay to
``min_lr_ratio lr``; the held-out windows are scored by a forward pass.

A run saves its state (adapters and optimizer) every ``save_every`` steps and records where in
``STORE/states/<id>/resume.json``; a run killed or failed part-way resumes from there on its next
attempt, and a transient service failure (rate limit, server error) is recovered within the run,
``service_retries`` times with exponential backoff, from the same point. The result records the
backend, base model, size ``N`` and the token ledger (tokens trained, sampled, evaluated, counting
every attempt); :mod:`._lora_analysis` fits ``L = A N^-alpha D_F^-beta + E`` and the rank effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, check_seed

from ._lora_data import KNOWN_MODELS, is_remote
from ._registry import RunOutput

__all__ = ["Config", "run", "plan_tokens", "is_remote", "KNOWN_MODELS", "TRAINING_BACKENDS",
           "TITLE", "QUESTION", "analyze_runs", "sweep_plan"]

TITLE = "LoRA fine-tuning: held-out loss against data, model size and rank"
QUESTION = ("How does the held-out loss after LoRA fine-tuning fall with the fine-tuning data "
            "D_F, the base model's size N and the adapters' rank r; does rank 1 keep up?")
TRAINING_BACKENDS = ("local", "tinker")
TOKENIZERS = ("auto", "bytes")



def _positive_int(name: str, v: Any, *, zero: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero else 1):
        raise ConfigError(f"{name} must be an integer >= {0 if zero else 1}, got {v!r}")


def _positive_float(name: str, v: Any, *, zero: bool = False) -> None:
    if (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            or v < 0 or (v == 0 and not zero)):
        raise ConfigError(f"{name} must be a finite number {'>=' if zero else '>'} 0, got {v!r}")


@dataclass(frozen=True)
class Config(ConfigBase):
    """One LoRA fine-tuning run (see the module docstring; every field is a sweep axis).

    Parameters
    ----------
    base_model : str
        Local: a checkpoint or run folder, or ``run:<id>/best``; Tinker: a service model name.
    training_backend : {"local", "tinker"}
    lora_rank : int
        r (1 allowed). ``lora_modules``: ``all`` (attention and MLP), ``attention``, ``mlp``.
    data, max_bytes, val_fraction : corpus spec, bytes read, held-out tail fraction.
    tokenizer : {"auto", "bytes"} or ``hf:NAME_OR_PATH``
    finetune_tokens : int
        D_F, training tokens; rounded down to whole steps of ``batch_size x context``.
    context, batch_size : tokens per window, windows per step.
    lr, warmup_steps, min_lr_ratio : LoRA learning rate and its schedule.
    beta1, beta2, eps, weight_decay, grad_clip : AdamW (decoupled decay; clip 0 = off).
    eval_tokens, eval_batch, eval_every : held-out tokens, windows per forward request,
        steps between evaluations (0: only at the end).
    save_every : steps between saved states (the resume points; 0: none).
    service_retries : transient service failures recovered within a run.
    n_params : N for the fit (default: a local checkpoint's non-embedding count, or
        :data:`KNOWN_MODELS` on Tinker).
    seed : adapters' initialisation and window order.
    """

    base_model: str = ""
    training_backend: str = "local"
    lora_rank: int = 8
    lora_modules: str = "all"
    data: str = "python-stdlib"
    max_bytes: int | None = 4_000_000
    val_fraction: float = 0.1
    tokenizer: str = "auto"
    finetune_tokens: int = 65_536
    context: int = 128
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_tokens: int = 16_384
    eval_batch: int = 16
    eval_every: int = 0
    save_every: int = 20
    service_retries: int = 3
    n_params: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.base_model:
            raise ConfigError("base_model must name a checkpoint (local) or a service model "
                              "(tinker)")
        if self.training_backend not in TRAINING_BACKENDS:
            raise ConfigError(f"training_backend must be one of {', '.join(TRAINING_BACKENDS)}, "
                              f"got {self.training_backend!r}")
        if self.tokenizer not in TOKENIZERS and not self.tokenizer.startswith("hf:"):
            raise ConfigError(f"tokenizer must be auto, bytes or hf:NAME, got {self.tokenizer!r}")
        if self.lora_modules not in ("all", "attention", "mlp"):
            raise ConfigError(f"lora_modules must be all, attention or mlp, got "
                              f"{self.lora_modules!r}")
        for name in ("lora_rank", "context", "batch_size", "eval_batch"):
            _positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "eval_every", "save_every", "service_retries"):
            _positive_int(name, getattr(self, name), zero=True)
        _positive_float("lr", self.lr)
        for name in ("eps", "weight_decay", "grad_clip"):
            _positive_float(name, getattr(self, name), zero=True)
        for name in ("beta1", "beta2", "min_lr_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {v!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.max_bytes is not None:
            _positive_int("max_bytes", self.max_bytes)
        if self.n_params is not None:
            _positive_float("n_params", self.n_params)
        if self.finetune_tokens < self.batch_size * self.context:
            raise ConfigError(f"finetune_tokens = {self.finetune_tokens} is less than one step "
                              f"(batch_size x context = {self.batch_size * self.context} tokens)")
        if self.eval_tokens < self.context:
            raise ConfigError(f"eval_tokens = {self.eval_tokens} is less than one window of "
                              f"context = {self.context} tokens")
        check_seed(self.seed)

    @property
    def steps(self) -> int:
        return self.finetune_tokens // (self.batch_size * self.context)

    @property
    def n_heldout_windows(self) -> int:
        return self.eval_tokens // self.context


def plan_tokens(config: Config) -> dict[str, Any]:
    """What one run will cost in tokens, before it runs (``occam sweep --dry-run``).

    ``tokens_trained`` and ``tokens_evaluated`` are exact (D_F is counted in tokens); whether
    the corpus holds that many tokens is exact with the ``bytes`` tokenizer and an estimate
    otherwise (:data:`~._lora_data.BYTES_PER_TOKEN_GUESS`), which ``exact`` and ``note`` say.
    """
    from ._lora_plan import token_plan

    return token_plan(config)


def sweep_plan(runs: Any, configs: Any, prices: Any = None) -> Any:
    """The :class:`~._lora_plan.SweepPlan` of a sweep's runs (``occam sweep`` prints it)."""
    from ._lora_plan import build_plan

    return build_plan("lora-finetune", runs, configs, prices)


def run(config: Config, run_dir: Path) -> RunOutput:
    from ._lora_run import train_and_measure

    result = train_and_measure(config, Path(run_dir))
    return RunOutput(result, files=("metrics.jsonl", "heldout.json"))


def analyze_runs(records: list[Any], *, prices: Any = None) -> Any:
    """The analysis of every stored run of this experiment (``occam report``): an
    :class:`~occamlab.experiments._suite.Analysis`."""
    from ._lora_analysis import analyze

    return analyze(records, prices=prices)
