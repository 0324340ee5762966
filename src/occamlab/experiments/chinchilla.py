"""Suite experiment ``chinchilla``: Chinchilla's scaling law on models occamlab trains itself.

The design is Hoffmann et al.'s (2022) isoFLOP grid: for each compute budget ``C`` every model
of a ladder is trained on ``D = C / (6 N)`` tokens, with a full warm-up + cosine schedule. ``N``
counts every parameter, embeddings included: in models this small the (tied) embedding and the
unembedding product are a large share of the weights and of the compute, and leaving them out is
one of the discrepancies Porian et al. (2024) trace between Kaplan's and Hoffmann's exponents. Two tasks: bytes of a real corpus (Shakespeare), and the symbols of a
process of :mod:`occamlab.processes` whose entropy rate ``h_mu`` is known exactly, so the fitted
irreducible loss ``E`` can be checked against the truth (``h_mu ln 2`` nats per symbol).

The analysis (a pure function of the stored runs) fits ``L(N, D) = E + A / N^alpha + B / D^beta``
(Approach 3, bootstrap intervals over runs), the compute-optimal exponent ``a`` of
``N_opt ~ C^a`` and tokens per parameter with intervals, Approach 2 (a parabola per budget, its
vertices against ``C``), and an extrapolation check (refit without the largest model size and
predict its runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, OccamError, check_seed

from ._chinchilla_page import QUESTION, TITLE, section
from ._numbers import covers, estimate
from ._refs import process_spec
from ._registry import RunOutput
from ._spec import PlannedRun, plan_run
from ._suite import Analysis, Stage, StoredRuns

__all__ = ["Config", "TITLE", "QUESTION", "plan", "analyze", "run", "model_size"]

@dataclass(frozen=True)
class Config(ConfigBase):
    """The isoFLOP grid and the two tasks.

    Parameters
    ----------
    models : tuple of (d_model, n_layer, n_head)
        The model ladder (GPT-2 layout, byte vocabulary for text).
    budgets, process_budgets : tuple of float
        Compute budgets ``C = 6 N D`` in FLOPs of the text and the process task; each model
        trains on ``D = C / (6 N)`` tokens.
    min_steps, max_tokens : int
        A (model, budget) pair whose run would have fewer steps or more tokens is left out.
    context, batch_size, lr : training settings shared by every run.
    corpus : str
        The text task (``occam data list``).
    process : str
        The process task (a library process with an exactly known entropy rate).
    bootstrap : int
        Bootstrap resamples of the Approach 3 fit.
    seed : int
        Seed of every run (initialisation, batches) and of the bootstrap.
    """

    models: tuple[tuple[int, int, int], ...] = ((8, 1, 1), (16, 1, 2), (16, 2, 2), (24, 2, 2),
                                                (32, 2, 2))
    budgets: tuple[float, ...] = (1e10, 3e10, 1e11)
    process_budgets: tuple[float, ...] = (3e9, 1e10, 3e10)
    min_steps: int = 30
    max_tokens: int = 3_000_000
    context: int = 32
    batch_size: int = 16
    lr: float = 1e-2
    corpus: str = "shakespeare"
    process: str = "nemo"
    bootstrap: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if len(self.models) < 3 or len(self.budgets) < 2 or len(self.process_budgets) < 2:
            raise ConfigError("the grid needs at least 3 model sizes and 2 budgets (Approach 2 "
                              "fits a parabola per budget)")
        for m in self.models:
            if len(m) != 3 or min(m) < 1 or m[0] % m[2]:
                raise ConfigError(f"models: each is (d_model, n_layer, n_head) with d_model "
                                  f"divisible by n_head, got {m!r}")
        if any(not (c > 0 and math.isfinite(c)) for c in (*self.budgets, *self.process_budgets)):
            raise ConfigError(f"budgets must be positive FLOPs, got {self.budgets!r} and "
                              f"{self.process_budgets!r}")
        if self.bootstrap < 0 or self.min_steps < 1 or self.max_tokens < 1:
            raise ConfigError("bootstrap >= 0, min_steps >= 1 and max_tokens >= 1 are required")

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(models=((8, 1, 1), (16, 1, 2), (16, 2, 2), (24, 2, 2), (32, 2, 2), (48, 2, 3),
                           (64, 3, 4)),
                   budgets=(1e10, 3e10, 1e11, 3e11, 1e12), process_budgets=(3e9, 1e10, 3e10, 1e11,
                                                                           3e11),
                   max_tokens=4_000_000, bootstrap=1000)  # one epoch of Shakespeare: 4.55M


VAL_FRACTION = 0.1  # of every run's corpus, held out for its loss


def model_size(d_model: int, n_layer: int, n_head: int, vocab_size: int, context: int) -> int:
    """Parameters ``N`` of a ladder rung, embeddings included (what the law's ``N`` counts)."""
    from occamlab.train import ModelConfig, n_params

    return int(n_params(ModelConfig(vocab_size=vocab_size, context=context, d_model=d_model,
                                    n_layer=n_layer, n_head=n_head)))


def _tasks(config: Config) -> list[dict[str, Any]]:
    """The two tasks: their corpus spec and vocabulary."""
    from occamlab.processes import build_process

    alphabet = build_process(config.process).n_symbols
    longest = max(config.process_budgets) / (6 * min(
        model_size(*m, alphabet, config.context) for m in config.models))
    length = int(min(longest, config.max_tokens) / 0.9) + 4 * config.context + 40_000
    return [{"task": "text", "corpus": config.corpus, "vocab_size": 256,
             "budgets": config.budgets},
            {"task": "process", "corpus": process_spec(config.process, length=length, seed=0),
             "vocab_size": alphabet, "budgets": config.process_budgets}]


def _run(config: Config, task: dict[str, Any], model: tuple[int, int, int], budget: float
         ) -> PlannedRun | None:
    d, L, h = model
    n = model_size(d, L, h, task["vocab_size"], config.context)
    tokens_per_step = config.batch_size * config.context
    steps = int(round(budget / (6 * n) / tokens_per_step))
    if steps < config.min_steps or steps * tokens_per_step > config.max_tokens:
        return None
    cfg = {"model": {"vocab_size": task["vocab_size"], "context": config.context, "d_model": d,
                     "n_layer": L, "n_head": h},
           "data": {"corpus": task["corpus"], "val_fraction": VAL_FRACTION},
           "seed": config.seed, "steps": steps, "batch_size": config.batch_size, "lr": config.lr,
           "warmup_steps": max(1, min(100, steps // 10)), "eval_every": max(1, steps // 2),
           "eval_tokens": 32_768, "threads": 0}
    point = {"task": task["task"], "budget": budget, "N": n, "D": steps * tokens_per_step}
    return plan_run("train", cfg, point)


def plan(config: Config) -> list[Stage]:
    runs = [r for task in _tasks(config) for budget in task["budgets"] for m in config.models
            if (r := _run(config, task, m, budget)) is not None]
    return [Stage("train", tuple(runs))]


def preflight(config: Config) -> None:
    """The text corpus must be on this machine and hold the largest text run's tokens (one
    epoch: the law is fitted on runs that never see a token twice)."""
    from occamlab.train import list_corpora

    known = {c.name: c for c in list_corpora().corpora}
    c = known.get(config.corpus)
    if c is None:
        return
    if not c.available:
        raise OccamError(f"corpus {config.corpus!r} is not installed: {c.install or 'see occam data list'}")
    need = max((int(r.point["D"]) for r in plan(config)[0].runs if r.point["task"] == "text"),
               default=0)
    have = int(c.n_bytes * (1 - VAL_FRACTION))  # byte tokens left for training
    if need > have:
        raise OccamError(f"corpus {config.corpus!r} has about {have} training tokens (bytes), but "
                         f"the largest text run of this grid needs {need} (one epoch): set "
                         f"max_tokens to at most {have} or drop the largest budgets")


# ---- analysis --------------------------------------------------------------------------------
def _frame(runs: StoredRuns, task: str) -> Any:
    import pandas as pd

    rows = []
    for r, rec in runs.done("train"):
        if r.point.get("task") != task or rec.result is None:
            continue
        loss = rec.result.get("final_val_loss")
        if loss is None:
            continue
        rows.append({"N": float(r.point["N"]), "D": float(rec.result["tokens_seen"]),
                     "C": float(r.point["budget"]), "loss": float(loss)})
    return pd.DataFrame(rows, columns=["N", "D", "C", "loss"])


def _param(fit: Any, name: str) -> dict[str, Any]:
    lo, hi = fit.ci.get(name, (None, None))
    return estimate(fit.params[name], (lo, hi), fit.level)


def _residual_structure(fit: Any) -> dict[str, Any]:
    import numpy as np
    from scipy import stats

    r = np.asarray(fit.residuals)
    n = np.log(np.asarray(fit.inputs["N"]))
    d = np.log(np.asarray(fit.inputs["D"]))
    i = int(np.argmax(np.abs(r)))
    rho_d = stats.spearmanr(d, r)
    rho_n = stats.spearmanr(n, r)
    return {"spearman_log_d": float(rho_d.statistic), "p_log_d": float(rho_d.pvalue),
            "spearman_log_n": float(rho_n.statistic), "p_log_n": float(rho_n.pvalue),
            "max_abs": float(abs(r[i])), "max_at": {"N": float(np.exp(n[i])),
                                                    "D": float(np.exp(d[i]))},
            "space": fit.space}


def _fit_task(config: Config, df: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fits of one task: results (plain JSON) and the result objects (for tables/figures)."""
    from occamlab.scaling import (
        Chinchilla,
        extrapolation_check,
        fit,
        fit_isoflop,
        optimal_allocation,
    )

    cols = {"N": "N", "D": "D"}
    ch = fit(Chinchilla(), df, target="loss", columns=cols, bootstrap=config.bootstrap,
             seed=config.seed, source="our runs")
    top = float(df["C"].max())
    alloc = optimal_allocation(ch, [top, 100 * top], seed=config.seed)
    objs: dict[str, Any] = {"fit": ch, "allocation": alloc}
    res: dict[str, Any] = {
        "n_runs": len(df), **{k: _param(ch, k) for k in ("E", "A", "B", "alpha", "beta")},
        "a_approach3": estimate(alloc.a, alloc.a_ci, alloc.level),
        "tokens_per_param": [estimate(t, ci, alloc.level, compute=c) for c, t, ci in
                             zip(alloc.compute, alloc.tokens_per_param, alloc.tokens_per_param_ci,
                                 strict=True)],
        "converged": ch.converged, "valid": ch.valid, "at_bound": list(ch.at_bound),
        "warnings": list(ch.warnings), "residuals": _residual_structure(ch)}
    try:
        iso = fit_isoflop(df, n="N", flops="C", loss="loss", bootstrap=200, min_points=3,
                          window=None, seed=config.seed, source="our runs")
        objs["isoflop"] = iso
        res["a_approach2"] = estimate(iso.a, iso.a_ci, iso.level, n_budgets=len(iso.budgets))
        res["isoflop_warnings"] = list(iso.warnings)
    except OccamError as exc:
        res["a_approach2"] = estimate(None, None, error=str(exc))
    sizes = sorted(set(df["N"]))
    if len(sizes) >= 4:
        try:  # intervals calibrated by backtests on the smaller models, where they allow it
            ex = extrapolation_check(Chinchilla(), df, by="N", n_holdout=1, target="loss",
                                     columns=cols, calibrate=True)
        except ConfigError:
            ex = extrapolation_check(Chinchilla(), df, by="N", n_holdout=1, target="loss",
                                     columns=cols)
        objs["extrapolation"] = ex
        res["extrapolation"] = {"held_out_N": sizes[-1], "n_points": len(ex.observed),
                                "mean_abs_relative_error": ex.mean_abs_relative_error,
                                "max_abs_relative_error": ex.max_abs_relative_error,
                                "coverage": ex.coverage, "level": ex.level,
                                "calibrated_coverage": (ex.calibrated_coverage
                                                        if ex.calibration is not None else None)}
    return res, objs


def _truth(config: Config) -> dict[str, Any]:
    from occamlab._units import bits_to_nats
    from occamlab.processes import analyze, build_process

    info = analyze(build_process(config.process))
    return {"process": config.process, "h_mu_bits": info.entropy_rate,
            "h_mu_nats": bits_to_nats(info.entropy_rate), "exact": info.entropy_rate_exact}


def analyze(config: Config, runs: StoredRuns) -> Analysis:
    """Fit both tasks from the stored runs and write the section (see the module docstring)."""
    results: dict[str, Any] = {"failed_runs": len(runs.failed("train"))}
    objects: dict[str, dict[str, Any]] = {}
    for task in ("text", "process"):
        df = _frame(runs, task)
        if len(df) < 8:
            results[task] = {"n_runs": len(df), "error": f"only {len(df)} finished runs (the "
                             "fit needs at least 8)"}
            continue
        results[task], objects[task] = _fit_task(config, df)
    results["truth"] = _truth(config)
    if "E" in results.get("process", {}):
        h = results["truth"]["h_mu_nats"]
        results["process"]["E_covers_h_mu"] = covers(results["process"]["E"], h)
        results["process"]["E_minus_h_mu"] = (results["process"]["E"]["value"] or math.nan) - h
    return Analysis(results, section(config, results, objects))


def run(config: Config, run_dir: Path) -> RunOutput:
    """The suite experiment run alone into a store inside ``run_dir`` (the contract)."""
    from ._suite import run_in_folder

    return run_in_folder("chinchilla", config, run_dir)
