"""Suite experiment ``prediction-generation``: prediction is not generation, with transformers.

Small transformers are trained (``train`` runs on ``process:`` data) on four processes whose
computational mechanics is known exactly: the binary Markov process at p = q = 0.4 (the seed's
example), the even process, RRXOR and Mess3 (x = 0.05, alpha = 0.85). A ``pvg-probe`` run per
trained model then measures, on fresh sequences with their exact belief states
(:mod:`.pvg_probe`):

- prediction: held-out loss per symbol against the exact entropy rate and the Bayes-optimal
  loss with the same context, and the loss by position against ``H(X_{t+1} | X_0..X_t)``;
- belief states: linear probes from each layer's residual stream to the belief (R^2 on held-out
  sequences; accuracy where beliefs take few values), and Mess3's belief simplex from the probe;
- generation: sequences sampled from the model at temperature 1 and from the process, the same
  shape; epsilon-machines inferred from both by CSSR with bootstrap intervals, and their block
  entropies against the exact ``H(L)``;
- for the binary Markov process: k-means clusters of the residual stream beside ``C_mu``, Lohr's
  generator and the minimal generator (the seed's point: the smallest generator is not the
  predictor).

``analyze`` only reads the probe runs' ``pvg.json`` and draws, so ``occam report`` is cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, check_seed

from ._numbers import covers, estimate
from ._pvg_page import QUESTION, TITLE, section
from ._refs import process_spec, run_ref
from ._registry import RunOutput
from ._spec import PlannedRun, plan_run
from ._suite import Analysis, Stage, StoredRuns

__all__ = ["Config", "TITLE", "QUESTION", "PROCESSES", "plan", "analyze", "run"]

# the processes: parameters and CSSR's history length (RRXOR needs 8: docs/processes.md)
PROCESSES: dict[str, tuple[dict[str, float], int]] = {
    "binary-markov": ({"p": 0.4, "q": 0.4}, 6),
    "even": ({}, 6),
    "rrxor": ({}, 8),
    "mess3": ({"x": 0.05, "alpha": 0.85}, 4),
}


@dataclass(frozen=True)
class Config(ConfigBase):
    """The processes, the model ladder and the training lengths, and the probe settings.

    Parameters
    ----------
    processes : tuple of str
        Processes of :data:`PROCESSES` (in page order).
    tokens : tuple of int
        Training tokens of the longest run of each process (same order as ``processes``).
    fractions : tuple of float
        Training lengths as fractions of ``tokens`` (the ladder of training lengths).
    models : tuple of (d_model, n_layer, n_head)
        The ladder of model sizes (GPT-2 layout; vocabulary = the process's alphabet).
    context, batch_size, lr : training settings shared by every run (AdamW, warm-up over a
        tenth of the steps, cosine decay).
    n_eval, n_probe_fit, n_probe_test : int
        Held-out sequences for the loss; sequences to fit and to score the probes on.
    gen_sequences, gen_length : int
        Sequences (and their length) sampled from each model and from each process.
    bootstrap : int
        Moving-block bootstrap resamples of each inference.
    k_max : int
        Largest k of the k-means of the binary Markov model's residual stream.
    seed : int
        Seed of the training data, the initialisation and every measurement.
    """

    processes: tuple[str, ...] = ("binary-markov", "even", "rrxor", "mess3")
    tokens: tuple[int, ...] = (500_000, 1_000_000, 3_000_000, 1_000_000)
    fractions: tuple[float, ...] = (1.0,)
    models: tuple[tuple[int, int, int], ...] = ((32, 2, 4),)
    context: int = 32
    batch_size: int = 64
    lr: float = 3e-3
    n_eval: int = 2000
    n_probe_fit: int = 1000
    n_probe_test: int = 500
    gen_sequences: int = 200
    gen_length: int = 1000
    bootstrap: int = 20
    k_max: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not self.processes or len(set(self.processes)) != len(self.processes):
            raise ConfigError("processes must name at least one process, each once")
        for p in self.processes:
            if p not in PROCESSES:
                raise ConfigError(f"process {p!r} is not one of this experiment's: "
                                  f"{', '.join(PROCESSES)}")
        if len(self.tokens) != len(self.processes) or min(self.tokens) < 1:
            raise ConfigError(f"tokens: one positive training length per process "
                              f"({len(self.processes)}), got {self.tokens!r}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must lie in (0, 1], got {self.fractions!r}")
        if not self.models:
            raise ConfigError("models: at least one (d_model, n_layer, n_head)")
        for m in self.models:
            if len(m) != 3 or min(m) < 1 or m[0] % m[2]:
                raise ConfigError(f"models: each is (d_model, n_layer, n_head) with d_model "
                                  f"divisible by n_head, got {m!r}")
        if self.context < 4 or self.batch_size < 1 or not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("context >= 4, batch_size >= 1 and a positive lr are required")

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(tokens=(1_000_000, 2_000_000, 12_000_000, 4_000_000), fractions=(0.25, 1.0),
                   models=((16, 1, 2), (32, 2, 4), (64, 2, 4)), n_eval=4000,
                   n_probe_fit=2000, n_probe_test=1000, gen_sequences=500, bootstrap=100)


def _train_run(config: Config, process: str, top: int, tokens: int,
               model: tuple[int, int, int]) -> PlannedRun:
    """One training run; every run of a process reads the same sampled sequence (sized for its
    longest run, one epoch at most)."""
    from occamlab.processes import build_process

    params = PROCESSES[process][0]
    vocab = build_process(process, params).n_symbols
    tps = config.batch_size * config.context
    steps = max(1, tokens // tps)
    length = int(math.ceil(top / 0.9)) + 4 * config.context + 40_000
    d, L, h = model
    cfg = {"model": {"vocab_size": vocab, "context": config.context, "d_model": d, "n_layer": L,
                     "n_head": h},
           "data": {"corpus": process_spec(process, length=length, seed=config.seed, **params),
                    "val_fraction": 0.1},
           "seed": config.seed, "steps": steps, "batch_size": config.batch_size,
           "lr": config.lr, "warmup_steps": max(1, steps // 10),
           "eval_every": max(1, steps // 4), "eval_tokens": 16_384, "threads": 0}
    return plan_run("train", cfg, {"process": process, "model": list(model),
                                   "tokens": steps * tps})


def _probe_run(config: Config, train: PlannedRun) -> PlannedRun:
    process = train.point["process"]
    params, history = PROCESSES[process]
    cfg = {"checkpoint": run_ref(train, "best"), "process": process, "params": params,
           "n_eval": config.n_eval, "n_probe_fit": config.n_probe_fit,
           "n_probe_test": config.n_probe_test, "gen_sequences": config.gen_sequences,
           "gen_length": config.gen_length, "gen_min_context": 3 * config.context // 4,
           "max_history": history, "bootstrap": config.bootstrap, "k_max": config.k_max,
           "seed": config.seed}
    return plan_run("pvg-probe", cfg, dict(train.point))


def _train_runs(config: Config) -> list[PlannedRun]:
    runs = []
    for process, top in zip(config.processes, config.tokens, strict=True):
        for m in config.models:
            for f in sorted(set(config.fractions)):
                runs.append(_train_run(config, process, top, max(1, int(top * f)), m))
    return runs


def plan(config: Config) -> list[Stage]:
    trains = _train_runs(config)
    return [Stage("train", tuple(trains)),
            Stage("probe", tuple(_probe_run(config, t) for t in trains))]


# ---- analysis --------------------------------------------------------------------------------
def _ci(value: float, se: float, **extra: Any) -> dict[str, Any]:
    """A normal 95% interval from a standard error."""
    return estimate(value, (value - 1.96 * se, value + 1.96 * se), 0.95, stderr=se, **extra)


def _inferred(r: Any) -> dict[str, Any]:
    lvl = r.level
    return {"states": r.n_states,
            "c_mu": estimate(r.statistical_complexity, r.statistical_complexity_ci, lvl),
            "h_mu": estimate(r.entropy_rate, r.entropy_rate_ci, lvl),
            "bootstrap": r.bootstrap, "bootstrap_states": list(r.bootstrap_state_counts)}


SYNC_TOL = 0.01  # nats: "synchronized" = within this of the floor from there on


def _settles(gaps: Any, tol: float = SYNC_TOL) -> int | None:
    """The first position from which every gap is below ``tol`` (None: never)."""
    t = None
    for i in range(len(gaps) - 1, -1, -1):
        if gaps[i] >= tol:
            break
        t = i
    return t


def _run_results(point: dict[str, Any], rep: Any) -> dict[str, Any]:
    t, p, pr = rep.truth, rep.prediction, rep.probes
    h = t.entropy_rate_nats
    marginal_gap = p.loss - t.marginal_entropy_nats
    return {
        "excess_first_quarter": _ci(p.excess_first_quarter, p.excess_first_quarter_se),
        "excess_last_quarter": _ci(p.excess_last_quarter, p.excess_last_quarter_se),
        "excess_by_position": list(p.excess_by_position),
        "excess_by_position_se": list(p.excess_by_position_se),
        "model": list(point["model"]), "n_params": rep.n_params, "tokens": point["tokens"],
        "loss": _ci(p.loss, p.loss_se), "gap_h_mu": _ci(p.loss - h, p.loss_se),
        "optimal": _ci(p.optimal, p.optimal_se), "excess": _ci(p.excess, p.excess_se),
        "below_marginal": _ci(-marginal_gap, p.loss_se),
        "learned_only_marginal": bool(marginal_gap > -2 * p.loss_se),
        "loss_by_position": list(p.loss_by_position),
        "loss_by_position_se": list(p.loss_by_position_se),
        "optimal_by_position": list(p.optimal_by_position),
        "probe": {"layers": list(pr.layers), "r2": list(pr.r2), "penalty": list(pr.penalty),
                  "n_features": list(pr.n_features), "accuracy": list(pr.accuracy),
                  "chance": pr.chance, "n_belief_values": pr.n_belief_values,
                  "n_fit_sequences": pr.n_fit_sequences, "n_test_sequences": pr.n_test_sequences},
        "inferred_model": _inferred(rep.inferred_model),
        "block_entropies_model": list(rep.generation.block_entropies_model)}


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    (alo, ahi), (blo, bhi) = a["ci"], b["ci"]
    if None in (alo, ahi, blo, bhi):
        return None
    return bool(alo <= bhi and blo <= ahi)


def _agreement(run: dict[str, Any], proc: dict[str, Any]) -> None:
    """How the model samples' machine compares with the process samples' and the truth's."""
    m, p, t = run["inferred_model"], proc["inferred_process"], proc["truth"]
    run["vs_process"] = {"states_equal": m["states"] == p["states"],
                         "c_mu_overlap": _overlap(m["c_mu"], p["c_mu"]),
                         "h_mu_overlap": _overlap(m["h_mu"], p["h_mu"])}
    run["vs_truth"] = {
        "states_equal": None if t["n_causal_states"] is None
        else m["states"] == t["n_causal_states"],
        "c_mu_covers": None if t["c_mu"] is None else covers(m["c_mu"], t["c_mu"]),
        "h_mu_covers": covers(m["h_mu"], t["h_mu_bits"])}


def _process_results(name: str, reps: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
    out = _process_base(name, reps)
    for r in out["runs"]:
        _agreement(r, out)
    return out


def _process_base(name: str, reps: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
    t = reps[0][1].truth
    g = reps[0][1].generation
    return {"params": PROCESSES[name][0], "max_history": PROCESSES[name][1],
            "truth": {"h_mu_bits": t.entropy_rate, "h_mu_nats": t.entropy_rate_nats,
                      "h_mu_exact": t.entropy_rate_exact, "c_mu": t.statistical_complexity,
                      "n_causal_states": t.n_causal_states,
                      "marginal_nats": t.marginal_entropy_nats,
                      "block_entropies": list(t.block_entropies),
                      "conditional_entropy_nats": list(t.conditional_entropy_nats),
                      "synchronized_from": _settles([c - t.entropy_rate_nats for c in
                                                     t.conditional_entropy_nats]),
                      "sync_tolerance_nats": SYNC_TOL,
                      "n_states": len(t.state_names)},
            "inferred_process": _inferred(reps[0][1].inferred_process),
            "block_entropies_process": list(g.block_entropies_process),
            "generation": {"n_sequences": g.n_sequences, "length": g.length,
                           "burn_in": g.burn_in, "min_context": g.min_context,
                           "temperature": g.temperature},
            "runs": [_run_results(pt, rep) for pt, rep in reps]}


def _binary_markov(rep: Any) -> dict[str, Any] | None:
    g, c = rep.generators, rep.clusters
    if g is None:
        return None
    out: dict[str, Any] = {"c_mu": g.statistical_complexity, "causal_states": g.causal_states,
                           "lohr_entropy": g.lohr_entropy, "lohr_states": g.lohr_states,
                           "generator_entropy": g.generator_entropy,
                           "generator_states": g.generator_states}
    if c is not None:
        out["clusters"] = {"layer": c.layer, "k": c.k, "entropy": c.entropy,
                           "sizes": list(c.sizes), "purity": c.purity,
                           "silhouette": list(c.silhouette), "k_values": list(c.k_values),
                           "n_points": c.n_points, "n_belief_values": c.n_belief_values,
                           "criterion": c.criterion}
    return out


def _reports(runs: StoredRuns) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    from .pvg_probe import PVGReport

    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for r, _ in runs.done("probe"):
        rep = PVGReport.from_dict(runs.read_json(r, "pvg.json"))
        out.setdefault(r.point["process"], []).append((r.point, rep))
    for reps in out.values():  # the main run last: the largest model, the longest training
        reps.sort(key=lambda pr: (pr[1].n_params, pr[0]["tokens"]))
    return out


def analyze(config: Config, runs: StoredRuns) -> Analysis:
    """Results and section from the probe runs' ``pvg.json`` (see the module docstring)."""
    reports = _reports(runs)
    results: dict[str, Any] = {
        "failed_runs": {"train": len(runs.failed("train")), "probe": len(runs.failed("probe"))},
        "processes": {n: _process_results(n, reports[n]) for n in config.processes
                      if n in reports},
        "missing": [n for n in config.processes if n not in reports]}
    bm = reports.get("binary-markov")
    if bm:
        results["binary_markov"] = _binary_markov(bm[-1][1])
    objects = {n: [rep for _, rep in reps] for n, reps in reports.items()}
    return Analysis(results, section(config, results, objects))


def run(config: Config, run_dir: Path) -> RunOutput:
    """The suite experiment run alone into a store inside ``run_dir`` (the contract)."""
    from ._suite import run_in_folder

    return run_in_folder("prediction-generation", config, run_dir)
