"""Suite experiment ``mdl-slt``: MDL meets SLT, run end to end (Urdshals et al. 2025).

Part 1: a family of small transformers (several sizes, checkpoints along each run, two tasks:
bytes of a text corpus and the symbols of a process with a known number of causal states) is
trained; at each checkpoint the calibrated LLC (with its diagnostics) and the critical compression
threshold ``n_q`` (schemes x tolerances) are measured, and the analysis fits ``n_q`` against the
LLC (slope, intercept, Pearson and Spearman with bootstrap intervals over models), per scheme, per
epsilon and pooled. A model whose LLC fails its own diagnostics is shown and left out of the fits
with the reason. A small sweep of ``n beta`` and step size (uncalibrated) shows how the LLC moves
with the protocol; one run's checkpoints give the LLC trajectory beside its loss curve.

Part 2: on models whose ``lambda`` and ``m`` are known, the volume law ``V(eps)`` is measured by
nested sampling (the ``volume-law`` experiment: dynesty), ``lambda`` and ``m`` are fitted from it,
and the two-part code's redundancy ``R_n`` and the free energy ``F_n`` computed from the same
runs are set against ``lambda log n - (m - 1) log log n``, beside the LLC estimator's value.

The plan and configuration live here; the analysis in :mod:`._mdl_slt_analysis` and the page in
:mod:`._mdl_slt_page`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, OccamError, check_seed
from occamlab.slt import SCHEMES, CalibrationConfig, SGLDConfig

from ._mdl_slt_page import QUESTION, TITLE
from ._refs import process_spec, run_ref
from ._registry import RunOutput
from ._spec import PlannedRun, plan_run
from ._suite import Analysis, Stage, StoredRuns

__all__ = ["Config", "TITLE", "QUESTION", "plan", "analyze", "run", "preflight", "snapshot_ref"]

VOLUME_CASES = ("regular/linreg-2x1", "normal_crossing/w1 w2^2", "normal_crossing/w1 w2",
                "rrr/2-1-2-r1", "rrr/2-2-2-r1")


def _sgld() -> SGLDConfig:
    return SGLDConfig(step_size=1e-2, batch_size=16, n_draws=150, n_burnin=150)


def _calibration() -> CalibrationConfig:
    return CalibrationConfig(pilot_draws=60, pilot_burnin=60)


@dataclass(frozen=True)
class Config(ConfigBase):
    """The model family, the measurements and the known-lambda models.

    Parameters
    ----------
    models : tuple of (d_model, n_layer, n_head)
        The sizes; each is trained once per task for ``steps`` steps.
    snapshots : tuple of int
        The training steps whose checkpoints are the Part 1 models (each size x task x step).
    trajectory : tuple of int
        Steps of the LLC trajectory, on the last model size's text run.
    context, batch_size, lr : training settings shared by every run.
    corpus, process : str
        The text task (``occam data list``) and the process task (a library process whose
        causal states are known).
    max_tokens : int
        Predicted tokens of the LLC and compression data (``n``; the first tokens of the
        training data).
    schemes, epsilons :
        Compression schemes and tolerances (nats per token) of ``n_q``.
    sgld, calibration :
        The calibrated LLC's base sampler and pilots.
    sensitivity_models : int
        How many final checkpoints get the protocol sweep (uncalibrated LLC at each of
        ``sensitivity_nbeta`` x ``sensitivity_steps``; ``n beta`` as multiples of ``n / log n``).
    volume_cases, n_live, n_runs, n_replicates :
        Part 2: the known-lambda models, and nested sampling's live points, runs and replicates.
    volume_sgld, volume_calibration :
        The LLC estimator's settings on the Part 2 models: full batch, as the validation
        suite (full: its defaults, 4 chains of 400 + 400 draws; quick: 4 chains of 200 + 200;
        with 2 chains the quick estimates moved by up to 0.14 on lambda = 0.5).
    bootstrap : int
        Bootstrap resamples (over models) of the fits.
    seed : int
    """

    models: tuple[tuple[int, int, int], ...] = ((8, 1, 1), (16, 1, 2))
    steps: int = 600
    snapshots: tuple[int, ...] = (150, 300, 600)
    trajectory: tuple[int, ...] = (50, 100, 150, 300, 450, 600)
    context: int = 32
    batch_size: int = 16
    lr: float = 1e-2
    corpus: str = "shakespeare"
    process: str = "nemo"
    max_tokens: int = 8192
    schemes: tuple[str, ...] = ("rtn-channel", "svd")
    epsilons: tuple[float, ...] = (0.01, 0.05)
    sgld: SGLDConfig = field(default_factory=_sgld)
    calibration: CalibrationConfig = field(default_factory=_calibration)
    sensitivity_models: int = 1
    sensitivity_nbeta: tuple[float, ...] = (1.0, 0.25)
    sensitivity_steps: tuple[float, ...] = (3e-3, 1e-2)
    volume_cases: tuple[str, ...] = VOLUME_CASES
    volume_sgld: SGLDConfig = field(
        default_factory=lambda: SGLDConfig(n_draws=200, n_burnin=200))
    volume_calibration: CalibrationConfig = field(
        default_factory=lambda: CalibrationConfig(pilot_draws=100, pilot_burnin=100))
    n_live: int = 50
    n_runs: int = 1
    n_replicates: int = 50
    bootstrap: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not self.models or any(len(m) != 3 or min(m) < 1 or m[0] % m[2] for m in self.models):
            raise ConfigError(f"models: each is (d_model, n_layer, n_head) with d_model divisible "
                              f"by n_head, got {self.models!r}")
        for name in ("snapshots", "trajectory"):
            v = getattr(self, name)
            if not v or any(not 1 <= s <= self.steps for s in v):
                raise ConfigError(f"{name} must be steps in [1, steps={self.steps}], got {v!r}")
        bad = [s for s in self.schemes if s not in SCHEMES]
        if not self.schemes or bad:
            raise ConfigError(f"schemes must be among {', '.join(SCHEMES)}, got {self.schemes!r}")
        if not self.epsilons or any(not (e > 0 and math.isfinite(e)) for e in self.epsilons):
            raise ConfigError(f"epsilons must be positive nats, got {self.epsilons!r}")
        if self.bootstrap < 10 or self.sensitivity_models < 0 or self.max_tokens < 4 * self.context:
            raise ConfigError("bootstrap >= 10, sensitivity_models >= 0 and max_tokens >= "
                              "4 x context are required")

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(models=((8, 1, 1), (16, 1, 2), (24, 2, 2), (32, 2, 2)), steps=2000,
                   snapshots=(125, 250, 500, 1000, 2000),
                   trajectory=(25, 50, 125, 250, 375, 500, 750, 1000, 1500, 2000),
                   max_tokens=16384,
                   sgld=SGLDConfig(step_size=1e-2, batch_size=16, n_draws=300, n_burnin=300),
                   calibration=CalibrationConfig(pilot_draws=100, pilot_burnin=100),
                   sensitivity_models=4, volume_sgld=SGLDConfig(),
                   volume_calibration=CalibrationConfig(), n_live=400, n_runs=4,
                   n_replicates=200, bootstrap=1000)


# ---- the plan --------------------------------------------------------------------------------
def _tasks(config: Config) -> list[dict[str, Any]]:
    from occamlab.processes import build_process

    tokens = config.steps * config.batch_size * config.context
    length = int(tokens / 0.9) + config.max_tokens + 8 * config.context + 10_000
    return [{"task": "text", "corpus": config.corpus, "vocab_size": 256},
            {"task": "process", "corpus": process_spec(config.process, length=length, seed=0),
             "vocab_size": build_process(config.process).n_symbols}]


def snapshot_ref(run: PlannedRun, step: int) -> str:
    """``run:<id>/snapshots/step-N``: the checkpoint of a training run at ``step``."""
    return run_ref(run, f"snapshots/step-{int(step)}")


def trajectory_key(config: Config) -> tuple[Any, ...]:
    """``(task, d_model, n_layer, n_head)`` of the training run whose snapshots make the LLC
    trajectory: the largest text model."""
    return ("text", *(int(v) for v in config.models[-1]))


def _is_trajectory(config: Config, task: str, model: tuple[int, int, int]) -> bool:
    return (task, *(int(v) for v in model)) == trajectory_key(config)


def _train_run(config: Config, task: dict[str, Any], model: tuple[int, int, int]) -> PlannedRun:
    from occamlab.train import ModelConfig, n_params

    d, n_layer, h = model
    steps = set(config.snapshots)
    if _is_trajectory(config, task["task"], model):
        steps |= set(config.trajectory)
    every = math.gcd(*sorted(steps))
    mcfg = {"vocab_size": task["vocab_size"], "context": config.context, "d_model": d,
            "n_layer": n_layer, "n_head": h}
    cfg = {"model": mcfg, "data": {"corpus": task["corpus"], "val_fraction": 0.1},
           "seed": config.seed, "steps": config.steps, "batch_size": config.batch_size,
           "lr": config.lr, "warmup_steps": max(1, min(100, config.steps // 10)),
           "eval_every": every, "eval_tokens": 8192, "snapshot_steps": sorted(steps),
           "threads": 0}
    n = int(n_params(ModelConfig(**mcfg)))
    return plan_run("train", cfg, {"task": task["task"], "d_model": d, "n_layer": n_layer,
                                   "n_head": h, "N": n})


def _llc_run(config: Config, train: PlannedRun, data: str, step: int, role: str,
             sgld: SGLDConfig | None = None, calibrate: bool = True,
             extra: dict[str, Any] | None = None) -> PlannedRun:
    cfg = {"checkpoint": snapshot_ref(train, step), "data": data, "max_tokens": config.max_tokens,
           "sgld": (sgld or config.sgld).to_dict(), "calibrate": calibrate,
           "calibration": _calibration_dict(config.calibration), "seed": config.seed,
           "device": "cpu"}
    return plan_run("llc", cfg, {**train.point, "step": step, "role": role, **(extra or {})})


def _calibration_dict(c: CalibrationConfig) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(c)


def _measure_runs(config: Config, train: PlannedRun, data: str) -> list[PlannedRun]:
    runs = []
    for step in config.snapshots:
        runs.append(_llc_run(config, train, data, step, "model"))
        for scheme in config.schemes:
            for eps in config.epsilons:
                cfg = {"checkpoint": snapshot_ref(train, step), "data": data,
                       "max_tokens": config.max_tokens, "scheme": scheme, "epsilon": eps,
                       "device": "cpu"}
                runs.append(plan_run("compress", cfg, {**train.point, "step": step,
                                                       "role": "compress", "scheme": scheme,
                                                       "epsilon": eps}))
    p = train.point
    if _is_trajectory(config, p["task"], (p["d_model"], p["n_layer"], p["n_head"])):
        runs += [_llc_run(config, train, data, s, "model") for s in config.trajectory]
    return runs


def _sensitivity_runs(config: Config, trains: list[tuple[PlannedRun, str]]) -> list[PlannedRun]:
    """Uncalibrated LLC at each (n beta, step) of the sweep, on the last checkpoints of the
    first ``sensitivity_models`` runs (largest sizes first)."""
    n = config.max_tokens
    default = n / math.log(n)
    order = sorted(trains, key=lambda t: (-t[0].point["N"], t[0].point["task"]))
    runs = []
    for train, data in order[: config.sensitivity_models]:
        for f in config.sensitivity_nbeta:
            for step in config.sensitivity_steps:
                sgld = config.sgld.replace(nbeta=f * default, step_size=step)
                runs.append(_llc_run(config, train, data, config.snapshots[-1], "sensitivity",
                                     sgld, calibrate=False,
                                     extra={"nbeta_factor": f, "step_size": step}))
    return runs


def _volume_runs(config: Config) -> list[PlannedRun]:
    base = {"n_live": config.n_live, "n_runs": config.n_runs,
            "n_replicates": config.n_replicates, "sgld": config.volume_sgld.to_dict(),
            "calibration": _calibration_dict(config.volume_calibration), "seed": config.seed}
    return [plan_run("volume-law", {**base, "case": c}, {"case": c, "role": "volume"})
            for c in config.volume_cases]


def _unique(runs: list[PlannedRun]) -> tuple[PlannedRun, ...]:
    seen: dict[str, PlannedRun] = {}
    for r in runs:
        seen.setdefault(r.id, r)
    return tuple(seen.values())


def train_runs(config: Config) -> list[tuple[PlannedRun, str]]:
    """Each training run with the corpus its checkpoints are measured on."""
    return [(_train_run(config, t, m), t["corpus"]) for t in _tasks(config) for m in config.models]


def plan(config: Config) -> list[Stage]:
    trains = train_runs(config)
    measure = [r for t, data in trains for r in _measure_runs(config, t, data)]
    measure += _sensitivity_runs(config, trains)
    # the volume-law runs need no training: they go first in the second stage, beside the
    # measurements, so that two workers stay busy
    return [Stage("train", _unique([t for t, _ in trains])),
            Stage("measure", _unique(_volume_runs(config) + measure))]


def preflight(config: Config) -> None:
    """The text corpus and dynesty must be on this machine."""
    from occamlab.slt import import_dynesty
    from occamlab.train import list_corpora

    import_dynesty()
    known = {c.name: c for c in list_corpora().corpora}
    c = known.get(config.corpus)
    if c is not None and not c.available:
        raise OccamError(f"corpus {config.corpus!r} is not installed: "
                         f"{c.install or 'see occam data list'}")


def analyze(config: Config, runs: StoredRuns) -> Analysis:
    from ._mdl_slt_analysis import analyze_runs
    from ._mdl_slt_page import section

    results, objects = analyze_runs(config, runs, [t for t, _ in train_runs(config)],
                                    trajectory_key(config))
    return Analysis(results, section(config, results, objects))


def run(config: Config, run_dir: Path) -> RunOutput:
    """The suite experiment run alone into a store inside ``run_dir`` (the contract)."""
    from ._suite import run_in_folder

    return run_in_folder("mdl-slt", config, run_dir)
