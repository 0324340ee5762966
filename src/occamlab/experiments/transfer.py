"""Suite experiment ``transfer``: scaling laws for transfer (Hernandez et al. 2021) on our own models.

The protocol is Hernandez et al.'s, on CPU-sized models (``N`` = non-embedding parameters,
``D`` = tokens, bytes of text). For each model size of a ladder:

- **from scratch** on the target (``python-stdlib``, code) at a ladder of dataset sizes ``D``, each
  run stopped at its validation optimum (early stopping on one fixed held-out set): ``L(N, D)``;
- **pretrained** once per source and size on natural language (``shakespeare``, and a second
  source, ``python-docs``, to test whether ``beta`` depends on the source), stored once and shared
  by every fine-tune that starts from it (``run:<id>/best``);
- **fine-tuned** on target subsets ``D_F``, best validation loss each; the effective data
  ``D_E`` that reaches the same loss from scratch, ``D_T = D_E - D_F``, and
  ``D_T = k D_F^alpha N^beta`` with bootstrap intervals over runs
  (:func:`occamlab.scaling.fit_transfer`);
- on one size, the same fine-tunes with frozen embeddings and LoRA of ranks 1, 4 and 16: ``D_T``
  by rank, where each falls behind full fine-tuning, and that size per trained parameter;
- a **process family** whose distances are exact: first-order Markov chains over 16 symbols whose
  logits move step by step from the target chain's towards an unrelated one's
  (:func:`~occamlab.experiments.transfer_data.markov_family`), so the KL divergence rate of each
  source from the target and the target's entropy rate (the loss floor) are exact
  (:func:`occamlab.processes.kl_divergence_rate`): ``alpha`` against the divergence, and every
  model's loss checked against the floor;
- **loss-to-loss** (Brandfonbrener et al. 2024) on the same from-scratch models: source loss
  against target loss paired by ``(N, D)`` (train-to-train), and the source models' own loss
  against their loss on the target's held-out set (train-to-test).

Runs are stages of the registered experiments ``transfer-data`` (token files), ``train``,
``finetune`` and ``evaluate``; the analysis (:mod:`._transfer_analysis`) is a pure function of the
stored runs and the page (:mod:`._transfer_page`) is written from its results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, OccamError, check_seed

from ._refs import run_ref
from ._registry import RunOutput
from ._spec import PlannedRun, plan_run
from ._suite import Analysis, Stage, StoredRuns
from ._transfer_page import QUESTION, TITLE
from .transfer_data import file_name, val_fraction

__all__ = ["Config", "ProcessFamily", "TITLE", "QUESTION", "plan", "preflight", "analyze", "run",
           "non_embedding", "MODES"]

Model = tuple[int, int, int]
MODES = ("full", "frozen-embedding", "lora")


@dataclass(frozen=True)
class ProcessFamily(ConfigBase):
    """The Markov family of the alpha-against-proximity test (see :func:`markov_family`).

    ``shifts`` are the sources (0 is the target, 1 an unrelated chain); the ladders are those of
    the main experiment, for ``models`` (d_model, n_layer, n_head) with vocabulary ``symbols``.
    """

    symbols: int = 16
    scale: float = 1.5
    family_seed: int = 1
    far_seed: int = 2
    shifts: tuple[float, ...] = (0.25, 0.5, 1.0)
    models: tuple[Model, ...] = ((16, 1, 2),)
    scratch_sizes: tuple[int, ...] = (128, 512, 2048, 8192, 32768)
    finetune_sizes: tuple[int, ...] = (128, 512, 2048, 8192)
    pretrain_tokens: int = 262_144
    pretrain_steps: int = 400


@dataclass(frozen=True)
class Config(ConfigBase):
    """The ladders, the corpora and the training settings.

    Parameters
    ----------
    models : tuple of (d_model, n_layer, n_head)
        The model ladder; ``N`` counts non-embedding parameters (Hernandez et al.).
    target, sources : str
        The target corpus and the source corpora (the first is the main pair's; at least two, to
        measure beta from each).
    scratch_sizes, finetune_sizes : tuple of int
        ``D`` of the from-scratch ladder and ``D_F`` of the fine-tuning ladder (tokens).
    pretrain_tokens, pretrain_steps : int
        Source data and step cap of each pretraining run.
    max_steps, patience : int
        Step cap of scratch and fine-tuning runs, and evaluations without improvement before
        early stopping (the runs are measured at their validation optimum).
    context, batch_size, lr, finetune_lr, warmup_steps : training settings (constant learning
        rate after warm-up; LoRA trains at 10x ``finetune_lr``).
    val_tokens, chunk : held-out tokens of every data set, and the chunk length of the corpora.
    lora_models, lora_ranks : the sizes of the LoRA and frozen-embedding study, and the ranks.
    behind_tolerance : float
        Nats by which a mode's loss may exceed full fine-tuning's before it "falls behind".
    process : ProcessFamily
    bootstrap, seed : resamples of every fit's intervals; seed of runs, data and bootstrap.
    """

    models: tuple[Model, ...] = ((8, 1, 1), (16, 1, 2), (16, 2, 2), (24, 2, 2))
    target: str = "python-stdlib"
    sources: tuple[str, ...] = ("shakespeare", "python-docs")
    scratch_sizes: tuple[int, ...] = (64, 256, 1024, 4096, 8192)
    finetune_sizes: tuple[int, ...] = (80, 800, 8000)
    pretrain_tokens: int = 262_144
    pretrain_steps: int = 400
    max_steps: int = 1000
    patience: int = 4
    context: int = 32
    batch_size: int = 16
    lr: float = 1e-2
    finetune_lr: float = 3e-3
    warmup_steps: int = 10
    val_tokens: int = 8192
    chunk: int = 512
    lora_models: tuple[Model, ...] = ((24, 2, 2),)
    lora_ranks: tuple[int, ...] = (1, 4, 16)
    behind_tolerance: float = 0.01
    process: ProcessFamily = field(default_factory=ProcessFamily)
    bootstrap: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        _check_models(self.models, "models")
        _check_models(self.process.models, "process.models")
        _check_ladders(self)
        if len(self.sources) < 2 or len(set(self.sources)) != len(self.sources) or \
                self.target in self.sources:
            raise ConfigError(f"sources must name at least two distinct corpora other than the "
                              f"target {self.target!r} (beta is measured from each), got "
                              f"{self.sources!r}")
        _check_lora(self)
        p = self.process
        if len(p.shifts) < 2 or any(not 0 < s <= 1 for s in p.shifts):
            raise ConfigError(f"process.shifts: at least 2 sources in (0, 1] (alpha against "
                              f"the divergence), got {p.shifts!r}")
        if not 2 <= p.symbols <= 256 or p.scale <= 0:
            raise ConfigError("process: 2 <= symbols <= 256 and scale > 0 are required")
        if self.val_tokens % self.context or self.val_tokens < self.context:
            raise ConfigError(f"val_tokens ({self.val_tokens}) must be a multiple of the context "
                              f"({self.context})")
        if self.bootstrap < 0 or self.patience < 1 or self.behind_tolerance <= 0:
            raise ConfigError("bootstrap >= 0, patience >= 1 and behind_tolerance > 0 are required")

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(models=((8, 1, 1), (16, 1, 2), (16, 2, 2), (24, 2, 2), (32, 2, 2), (32, 3, 4)),
                   scratch_sizes=(128, 512, 2048, 8192, 32768, 131072),
                   finetune_sizes=(128, 512, 2048, 8192, 32768), pretrain_tokens=4_194_304,
                   pretrain_steps=3000, max_steps=3000, patience=5, val_tokens=16_384,
                   lora_models=((24, 2, 2), (32, 2, 2)),
                   process=ProcessFamily(shifts=(0.15, 0.3, 0.5, 0.75, 1.0),
                                         models=((16, 1, 2), (24, 1, 2)),
                                         scratch_sizes=(128, 512, 2048, 8192, 32768, 131072),
                                         finetune_sizes=(128, 512, 2048, 8192, 32768),
                                         pretrain_tokens=1_048_576, pretrain_steps=1500),
                   bootstrap=1000)


def _check_models(models: tuple[Model, ...], name: str) -> None:
    for m in models:
        if len(m) != 3 or min(m) < 1 or m[0] % m[2]:
            raise ConfigError(f"{name}: each is (d_model, n_layer, n_head) with d_model divisible "
                              f"by n_head, got {m!r}")
    if len(set(models)) != len(models):
        raise ConfigError(f"{name}: a model appears twice in {models!r}")


def _check_ladders(config: Config) -> None:
    """Enough points for every fit, and subsets the runs can hold out from."""
    p = config.process
    need = [("scratch_sizes", config.scratch_sizes, 4, "each size's L(D) curve has 3 parameters"),
            ("process.scratch_sizes", p.scratch_sizes, 4, "each size's L(D) curve has 3 "
             "parameters"),
            ("finetune_sizes", config.finetune_sizes, 2, "alpha is a slope in D_F"),
            ("models", config.models, 2, "beta is a slope in N")]
    for name, ladder, k, why in need:
        if len(set(ladder)) < k:
            raise ConfigError(f"{name} has {len(set(ladder))} distinct points; the fit needs at "
                              f"least {k} ({why})")
    per_member = len(p.models) * len(set(p.finetune_sizes))
    if per_member < 4:
        raise ConfigError(f"process: {per_member} fine-tuned runs per source; the transfer law "
                          "needs at least 4 (process.models x process.finetune_sizes)")
    if len(config.models) * len(set(config.scratch_sizes)) < 6:
        raise ConfigError("loss-to-loss needs at least 6 paired models (models x scratch_sizes): "
                          "its L(N, D) fits have 5 parameters")
    for name, ladder, scratch in (("finetune_sizes", config.finetune_sizes, config.scratch_sizes),
                                  ("process.finetune_sizes", p.finetune_sizes, p.scratch_sizes)):
        if max(ladder) > max(scratch):
            raise ConfigError(f"{name}: D_F = {max(ladder)} is beyond the from-scratch ladder "
                              f"(largest D {max(scratch)}); D_E would be extrapolated")
    small = [s for s in (*config.scratch_sizes, *config.finetune_sizes, *p.scratch_sizes,
                         *p.finetune_sizes) if s <= config.context]
    if small:
        raise ConfigError(f"dataset sizes must exceed the context ({config.context} tokens), got "
                          f"{sorted(set(small))}")


def _check_lora(config: Config) -> None:
    for m in config.lora_models:
        if m not in config.models:
            raise ConfigError(f"lora_models: {m!r} is not one of models {config.models!r}")
    ranks = config.lora_ranks
    if any(isinstance(r, bool) or r < 1 for r in ranks) or len(set(ranks)) != len(ranks):
        raise ConfigError(f"lora_ranks must be distinct positive integers, got {ranks!r}")
    for m in config.lora_models:
        too_big = [r for r in ranks if r > m[0]]
        if too_big:
            raise ConfigError(f"LoRA rank {max(too_big)} is larger than the layers it adapts in "
                              f"model {m!r}: the smallest is d_model x d_model ({m[0]}), so the "
                              f"rank can be at most {m[0]}")


def non_embedding(model: Model) -> int:
    """``N`` of a ladder rung: its non-embedding parameters (what Hernandez et al. count)."""
    from occamlab.train import ModelConfig, n_params_non_embedding

    d, L, h = model
    return int(n_params_non_embedding(ModelConfig(vocab_size=2, context=8, d_model=d,
                                                  n_layer=L, n_head=h)))


# ---- plan ------------------------------------------------------------------------------------
def _data_runs(config: Config) -> dict[str, PlannedRun]:
    """One ``transfer-data`` run per distribution: key ``target``, a source name, or
    ``markov:<shift>`` (``markov:0`` is the family's target)."""
    p = config.process
    base = {"val_tokens": config.val_tokens, "chunk": config.chunk, "seed": config.seed}
    out = {"target": plan_run("transfer-data", {**base, "corpus": config.target, "sizes": sorted(
        set(config.scratch_sizes) | set(config.finetune_sizes))}, {"role": "data"})}
    for i, src in enumerate(config.sources):
        sizes = {config.pretrain_tokens} | (set(config.scratch_sizes) if i == 0 else set())
        out[src] = plan_run("transfer-data", {**base, "corpus": src, "sizes": sorted(sizes)},
                            {"role": "data"})
    chain = {"corpus": "", "symbols": p.symbols, "scale": p.scale, "family_seed": p.family_seed,
             "far_seed": p.far_seed}
    out["markov:0"] = plan_run("transfer-data", {**base, **chain, "shift": 0.0, "sizes": sorted(
        set(p.scratch_sizes) | set(p.finetune_sizes))}, {"role": "data"})
    for i, s in enumerate(p.shifts):  # its own sampling seed: no shared randomness with the target
        out[f"markov:{s:g}"] = plan_run("transfer-data", {**base, **chain, "shift": s,
                                                          "seed": config.seed + 1 + i,
                                                          "sizes": [p.pretrain_tokens]},
                                        {"role": "data"})
    return out


def _train_cfg(config: Config, model: Model, vocab: int, data: PlannedRun, size: int, *,
               lr: float, steps: int, eval_every: int | None = None) -> dict[str, Any]:
    """A run's ``TrainConfig`` on subset ``size`` of ``data``: constant rate after warm-up,
    evaluated about twice an epoch but every 10 to 50 steps, stopped after ``patience``
    evaluations without improvement. (At 2 steps between evaluations a run stopped on the
    early plateau of the loss: the largest quick model at D = 4096 ended at 3.15 nats where the
    others reached 2.6.)"""
    d, L, h = model
    tps = config.batch_size * config.context
    every = eval_every or max(10, min(50, round(size / tps / 2)))
    return {"model": {"vocab_size": vocab, "context": config.context, "d_model": d, "n_layer": L,
                      "n_head": h},
            "data": {"corpus": run_ref(data, file_name(size)),
                     "val_fraction": val_fraction(size, config.val_tokens), "max_epochs": 1e9},
            "seed": config.seed, "steps": steps, "batch_size": config.batch_size, "lr": lr,
            "warmup_steps": config.warmup_steps, "min_lr_ratio": 1.0, "eval_every": every,
            "eval_tokens": config.val_tokens, "patience": config.patience, "threads": 0}


def _point(role: str, dist: str, model: Model, size: int, **extra: Any) -> dict[str, Any]:
    return {"role": role, "dist": dist, "model": list(model), "N": non_embedding(model),
            "D": size, **extra}


def _stage_train(config: Config, data: dict[str, PlannedRun]) -> dict[str, PlannedRun]:
    """From-scratch and pretraining runs, keyed ``role|dist|model|D``."""
    p = config.process
    runs: dict[str, PlannedRun] = {}

    def add(role: str, dist: str, model: Model, vocab: int, size: int, steps: int,
            every: int | None = None) -> None:
        cfg = _train_cfg(config, model, vocab, data[dist], size, lr=config.lr, steps=steps,
                         eval_every=every)
        runs[f"{role}|{dist}|{model}|{size}"] = plan_run("train", cfg,
                                                          _point(role, dist, model, size))

    for m in config.models:
        for size in config.scratch_sizes:
            add("scratch", "target", m, 256, size, config.max_steps)
            add("scratch", config.sources[0], m, 256, size, config.max_steps)
        for src in config.sources:
            add("pretrain", src, m, 256, config.pretrain_tokens, config.pretrain_steps,
                max(1, config.pretrain_steps // 10))
    for m in p.models:
        for size in p.scratch_sizes:
            add("scratch", "markov:0", m, p.symbols, size, config.max_steps)
        for s in p.shifts:
            add("pretrain", f"markov:{s:g}", m, p.symbols, p.pretrain_tokens, p.pretrain_steps,
                max(1, p.pretrain_steps // 10))
    return runs


def _finetune(config: Config, pre: PlannedRun, data: PlannedRun, model: Model, vocab: int,
              size: int, mode: str, rank: int, point: dict[str, Any]) -> PlannedRun:
    cfg = {"checkpoint": run_ref(pre, "best"), "mode": mode, "lora_rank": rank,
           "train": _train_cfg(config, model, vocab, data, size, lr=config.finetune_lr,
                               steps=config.max_steps)}
    return plan_run("finetune", cfg, point)


def _stage_finetune(config: Config, data: dict[str, PlannedRun],
                    trained: dict[str, PlannedRun]) -> list[PlannedRun]:
    """Fine-tunes from the shared pretrained checkpoints, and the train-to-test evaluations."""
    p = config.process
    out = []
    for m in config.models:
        for src in config.sources:
            pre = trained[f"pretrain|{src}|{m}|{config.pretrain_tokens}"]
            modes = [("full", 8)]
            if src == config.sources[0] and m in config.lora_models:
                modes += [("frozen-embedding", 8)] + [("lora", r) for r in config.lora_ranks]
            for size in config.finetune_sizes:
                for mode, rank in modes:
                    pt = _point("finetune", "target", m, size, source=src, mode=mode,
                                rank=rank if mode == "lora" else None)
                    out.append(_finetune(config, pre, data["target"], m, 256, size, mode, rank,
                                         pt))
        for size in config.scratch_sizes:  # source models measured on the target's held-out set
            src_run = trained[f"scratch|{config.sources[0]}|{m}|{size}"]
            out.append(plan_run("evaluate", {"checkpoint": run_ref(src_run, "best"),
                                             "data": run_ref(data["target"], "val.npy"),
                                             "max_tokens": config.val_tokens},
                                _point("eval", "target", m, size, source=config.sources[0])))
    for m in p.models:
        for s in p.shifts:
            pre = trained[f"pretrain|markov:{s:g}|{m}|{p.pretrain_tokens}"]
            for size in p.finetune_sizes:
                pt = _point("finetune", "markov:0", m, size, source=f"markov:{s:g}", shift=s,
                            mode="full", rank=None)
                out.append(_finetune(config, pre, data["markov:0"], m, p.symbols, size, "full", 8,
                                     pt))
    return out


def plan(config: Config) -> list[Stage]:
    data = _data_runs(config)
    trained = _stage_train(config, data)
    return [Stage("data", tuple(data.values())), Stage("train", tuple(trained.values())),
            Stage("finetune", tuple(_stage_finetune(config, data, trained)))]


def preflight(config: Config) -> None:
    """The corpora must be installed, and hold every subset the ladders ask for (with the held-out
    set taken out) before anything runs."""
    import math

    from occamlab.train import list_corpora

    known = {c.name: c for c in list_corpora().corpora}
    held = math.ceil((config.val_tokens + 1) / config.chunk) * config.chunk
    wants = {config.target: max(*config.scratch_sizes, *config.finetune_sizes)}
    for i, src in enumerate(config.sources):
        wants[src] = max(config.pretrain_tokens, *(config.scratch_sizes if i == 0 else (0,)))
    for name, want in wants.items():
        c = known.get(name)
        if c is None:
            continue  # a file or folder: transfer-data checks its size when it runs
        if not c.available:
            raise OccamError(f"corpus {name!r} is not installed: {c.install or 'see occam data list'}"
                             " (or `make corpora` as root)")
        pool = (c.n_bytes // config.chunk) * config.chunk - held
        if want > pool:
            raise ConfigError(f"corpus {name!r} holds about {pool} training tokens after the "
                              f"held-out set; the ladder asks for D = {want}")


# ---- analysis --------------------------------------------------------------------------------
def analyze(config: Config, runs: StoredRuns) -> Analysis:
    """The fits and claims from the stored runs (:mod:`._transfer_analysis`) and the section."""
    from ._transfer_analysis import results_of
    from ._transfer_page import section

    results, objects = results_of(config, runs, _data_runs(config))
    return Analysis(results, section(config, results, objects))


def run(config: Config, run_dir: Path) -> RunOutput:
    """The suite experiment run alone into a store inside ``run_dir`` (the contract)."""
    from ._suite import run_in_folder

    return run_in_folder("transfer", config, run_dir)
