"""Suite experiment ``published``: what needs no training, from published measurements and exact
computation.

Scaling laws refitted to other people's runs (Porian et al. 2024, Gadre et al. 2024: Chinchilla
Approach 3 and 2, loss-to-loss, downstream verdicts; the ``published-fits`` experiment), and the
computational mechanics of the seed's second post over the binary Markov process's ``(p, q)``
square (``C_mu``, Lohr's generator, the minimal generator; the ``process-map`` experiment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab.errors import ConfigError, DataError, check_seed

from ._numbers import estimate
from ._published_page import QUESTION, TITLE, section
from ._registry import RunOutput
from ._spec import plan_run
from ._suite import Analysis, Stage, StoredRuns

__all__ = ["Config", "TITLE", "QUESTION", "plan", "analyze", "run"]

PUBLISHED: dict[str, Any] = {"isoflop_tuned_a": 0.497, "isoflop_kaplan_a": 0.834, "kappa_range": (0.36, 1.08),
             "downstream_predictable": 18, "downstream_tasks": 46, "lohr_crossover": 0.3865,
             "chinchilla_tokens_per_param": 20.0}


@dataclass(frozen=True)
class Config(ConfigBase):
    """Bootstrap resamples of the Chinchilla refit, the downstream corpus, and the size of the
    process grid (``grid`` x ``grid`` points of (p, q), ``line`` points of p = q)."""

    bootstrap: int = 200
    seed: int = 0
    downstream_corpus: str = "rw_original"
    grid: int = 9
    line: int = 25
    n_starts: int = 2

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.grid < 2 or self.line < 2 or self.bootstrap < 0 or self.n_starts < 0:
            raise ConfigError("published: grid >= 2, line >= 2, bootstrap >= 0, n_starts >= 0")

    @classmethod
    def quick(cls) -> Config:
        return cls(bootstrap=200, grid=9, line=25)

    @classmethod
    def full(cls) -> Config:
        return cls(bootstrap=1000, grid=19, line=48, n_starts=4)


def _runs(config: Config) -> tuple[Any, Any]:
    fits = plan_run("published-fits", {"bootstrap": config.bootstrap, "seed": config.seed,
                                       "downstream_corpus": config.downstream_corpus})
    pmap = plan_run("process-map", {"grid": config.grid, "line": config.line,
                                    "n_starts": config.n_starts, "seed": config.seed})
    return fits, pmap


def plan(config: Config) -> list[Stage]:
    return [Stage("compute", _runs(config))]


def _load(runs: StoredRuns, run: Any, name: str) -> Any:
    done = {r.id for r, _ in runs.done("compute")}
    if run.id not in done:
        reason = dict((r.id, why) for r, why in runs.failed("compute")).get(run.id, "not run")
        raise DataError(f"the {run.experiment} run failed: {reason}")
    return runs.read_json(run, name)


def _chinchilla_results(ch: Any) -> dict[str, Any]:
    f, a, ex = ch.fit, ch.allocation, ch.extrapolation
    out: dict[str, Any] = {k: estimate(f.params[k], f.ci[k], f.level)
                           for k in ("E", "A", "B", "alpha", "beta")}
    out["n_runs"] = f.n_points
    out["valid"] = f.valid
    out["warnings"] = list(f.warnings)
    out["a_approach3"] = estimate(a.a, a.a_ci, a.level)
    out["tokens_per_param"] = [estimate(t, ci, a.level, compute=c) for c, t, ci in
                               zip(a.compute, a.tokens_per_param, a.tokens_per_param_ci,
                                   strict=True)]
    if ex is not None:
        out["extrapolation"] = {"held_out": sorted(set(ex.groups)), "n_points": len(ex.observed),
                                "mean_abs_relative_error": ex.mean_abs_relative_error,
                                "max_abs_relative_error": ex.max_abs_relative_error,
                                "coverage": ex.coverage,
                                "calibrated_coverage": (ex.calibrated_coverage
                                                        if ex.calibration is not None else None),
                                "median_half_width": list(ex.median_half_width)}
    return out


def analyze(config: Config, runs: StoredRuns) -> Analysis:
    from occamlab.processes import CompareResult, GeneratorMap
    from occamlab.scaling import (
        ChinchillaReport,
        DownstreamResult,
        IsoflopResult,
        LossToLossResult,
    )

    fits_run, map_run = _runs(config)
    fits = _load(runs, fits_run, "fits.json")
    pmap = _load(runs, map_run, "map.json")
    objs = {"chinchilla": ChinchillaReport.from_dict(fits["chinchilla"]),
            "isoflop_tuned": IsoflopResult.from_dict(fits["isoflop_tuned"]),
            "isoflop_kaplan": IsoflopResult.from_dict(fits["isoflop_kaplan"]),
            "loss_to_loss": LossToLossResult.from_dict(fits["loss_to_loss"]),
            "downstream": DownstreamResult.from_dict(fits["downstream"]),
            "map": GeneratorMap.from_dict(pmap["map"]), "line": CompareResult.from_dict(pmap["line"])}
    results = {"chinchilla": _chinchilla_results(objs["chinchilla"]),
               "isoflop": {k: estimate(o.a, o.a_ci, o.level, valid=o.valid,
                                       warnings=list(o.warnings), published=PUBLISHED[f"{k}_a"])
                           for k, o in (("isoflop_tuned", objs["isoflop_tuned"]),
                                        ("isoflop_kaplan", objs["isoflop_kaplan"]))},
               "loss_to_loss": _l2l_results(objs["loss_to_loss"]),
               "downstream": {"counts": objs["downstream"].counts(),
                              "n_tasks": len(objs["downstream"].verdicts),
                              "published_predictable": PUBLISHED["downstream_predictable"]},
               "mechanics": _mechanics_results(objs["map"], objs["line"]),
               "published": {k: list(v) if isinstance(v, tuple) else v
                             for k, v in PUBLISHED.items()}}
    return Analysis(results, section(config, results, objs))


def _l2l_results(l2l: Any) -> dict[str, Any]:
    lo, hi = PUBLISHED["kappa_range"]
    law = l2l.law
    k = estimate(law.params["kappa"], law.ci["kappa"], law.level)
    return {"kappa": k, "K": estimate(law.params["K"], law.ci["K"], law.level),
            "E_x": estimate(l2l.fit_x.params["E"], l2l.fit_x.ci["E"], l2l.fit_x.level),
            "E_y": estimate(l2l.fit_y.params["E"], l2l.fit_y.ci["E"], l2l.fit_y.level),
            "n_models": law.n_points, "in_published_range": bool(lo <= l2l.kappa <= hi),
            "valid": l2l.valid, "warnings": list(l2l.warnings)}


def _mechanics_results(gmap: Any, line: Any) -> dict[str, Any]:
    import numpy as np

    from occamlab.processes import lohr_crossover

    gain = gmap.gain()
    off_iid = ~np.isclose(np.add.outer(np.array(gmap.x_values), np.array(gmap.y_values)), 1.0)
    beats = (gain > 1e-6) & off_iid
    vals = np.array(line.values)
    i = int(np.argmin(np.abs(vals - 0.4)))
    return {"lohr_crossover": lohr_crossover(),
            "grid_points": int(gain.size), "grid_points_off_iid": int(off_iid.sum()),
            "generator_beats_cmu": int(beats.sum()),
            "at_p": float(vals[i]),
            "c_mu": line.statistical_complexity[i], "lohr": line.lohr_entropy[i],
            "minimal_generator": line.generator_entropy[i], "states": gmap.states,
            "lohr_beats_cmu_from": (line.lohr_beats_cmu or [None])[0]}


def run(config: Config, run_dir: Path) -> RunOutput:
    """The suite experiment run alone into a store inside ``run_dir`` (the contract)."""
    from ._suite import run_in_folder

    return run_in_folder("published", config, run_dir)
