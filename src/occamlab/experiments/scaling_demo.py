"""The scaling-law demo on bundled real measurements (``occam demo``).

1. Chinchilla Approach 3 on Porian et al.'s tuned isoFLOP sweep, with the compute-optimal allocation.
2. Approach 2 on the same sweep and on the Kaplan-like one: Porian et al. report N_opt ~ C^0.834 under
   Kaplan-like settings and C^0.497 with tuned settings.
3. Loss-to-loss (Brandfonbrener et al.): Gadre et al.'s C4 models, C4 validation loss -> PTB loss.
4. Downstream metrics (Lourie et al.): which of Gadre et al.'s 46 tasks scale predictably with compute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, check_seed
from occamlab.reports._html import Section, write_report
from occamlab.scaling import (
    Chinchilla,
    classify_downstream,
    fit,
    fit_isoflop,
    fit_loss_to_loss,
    load_dataset,
    optimal_allocation,
    plot_extrapolation,
    plot_isoflop,
)

from ._registry import RunOutput

__all__ = ["Config", "ScalingDemoConfig", "DemoOutput", "execute", "run"]

TUNED = {"dataset": "rw", "hparams": "tuned", "warmup": "short", "decay": "const", "param_count": "standard",
         "val": "val"}
KAPLAN = {"dataset": "rw", "hparams": "base", "warmup": "long", "decay": "kaplan", "param_count": "kaplan",
          "val": "train"}


@dataclass(frozen=True)
class Config:
    """The scaling-law demo on published measurements.

    Parameters
    ----------
    bootstrap : int
        Bootstrap resamples of the Chinchilla fit (its intervals).
    seed : int
        Seeds the bootstrap and the isoFLOP intervals.
    downstream_corpus : str
        Which of Gadre et al.'s pretraining corpora the downstream verdicts use.
    """

    bootstrap: int = 200
    seed: int = 0
    downstream_corpus: str = "rw_original"

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int) or not (
                0 <= self.bootstrap <= 100_000):
            raise ConfigError(f"bootstrap must be an integer in [0, 100000], got {self.bootstrap!r}")

    @classmethod
    def quick(cls) -> Config:
        return cls(bootstrap=200)

    @classmethod
    def full(cls) -> Config:
        return cls(bootstrap=1000)


ScalingDemoConfig = Config  # the name before the experiment contract


@dataclass(frozen=True)
class DemoOutput:
    report: str
    results: str
    summary: dict[str, Any]


def _select(df: Any, keys: dict[str, str]) -> Any:
    m = None
    for k, v in keys.items():
        m = (df[k] == v) if m is None else m & (df[k] == v)
    return df[m].copy()


def run(config: Config, run_dir: Path) -> RunOutput:
    """The experiment contract: :func:`execute` into ``run_dir``; the result is the summary."""
    res = execute(config, run_dir, progress=lambda _msg: None)
    return RunOutput(res.summary, files=("report.html", "results.json"))


def execute(config: Config, out_dir: str | Path, *, progress: Any = print) -> DemoOutput:
    """Run the demo and write ``report.html``, ``results.json`` and figures under ``out_dir``."""
    from occamlab.scaling import extrapolation_check

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    porian = load_dataset("porian2024")
    tuned, kaplan = _select(porian, TUNED), _select(porian, KAPLAN)
    tuned["D"] = tuned["tokens"]
    results: dict[str, Any] = {"config": asdict(config)}
    sections = []

    progress("1/4 Chinchilla Approach 3 on Porian et al. (tuned settings), 4,500 starts ...")
    ch = fit(Chinchilla(), tuned, target="loss", columns={"N": "n", "D": "D"}, bootstrap=config.bootstrap,
             seed=config.seed, source="porian2024 (tuned)")
    alloc = optimal_allocation(ch, [1e18, 1e20, 1e22, 5.76e23], seed=config.seed)
    ch.plot(str(out / "chinchilla.png"))
    ex = extrapolation_check(Chinchilla(), tuned, by="n", n_holdout=2, target="loss",
                             columns={"N": "n", "D": "D"})
    plot_extrapolation(ex, str(out / "extrapolation.png"))
    results["chinchilla"] = ch.to_dict()
    results["allocation"] = alloc.to_dict()
    results["extrapolation"] = {k: v for k, v in ex.to_dict().items() if k != "fits"}
    sections.append(Section(
        "Chinchilla Approach 3: L(N, D) = E + A/N^alpha + B/D^beta",
        [f"{ch.n_points} runs of Porian et al. (2024), RefinedWeb, tuned hyperparameters, short warmup, "
         "constant schedule, validation loss. Huber loss (delta 1e-3) on log residuals, the full grid of "
         "Hoffmann et al. (4,500 starts), polished to full precision; intervals from "
         f"{config.bootstrap} bootstrap resamples.",
         "The extrapolation check refits without the two largest model sizes and predicts them: the "
         "error shows how far such a law can be trusted beyond the data."],
        [ch, alloc, ex], [out / "chinchilla.png", out / "extrapolation.png"]))

    progress("2/4 Approach 2 (isoFLOP parabolas) on tuned and Kaplan-like settings ...")
    iso_t = fit_isoflop(tuned, n="n", flops="flops", loss="loss", seed=config.seed, source="tuned")
    iso_k = fit_isoflop(kaplan, n="n", flops="flops", loss="loss", seed=config.seed, source="kaplan-like")
    plot_isoflop(iso_t, path=str(out / "isoflop_tuned.png"))
    plot_isoflop(iso_k, path=str(out / "isoflop_kaplan.png"))
    results["isoflop_tuned"] = iso_t.to_dict()
    results["isoflop_kaplan"] = iso_k.to_dict()
    sections.append(Section(
        "Approach 2: optimal model size against compute",
        ["Porian et al. (2024) trace the gap between Kaplan's and Hoffmann's exponents to the warmup, "
         "the learning-rate schedule, the parameter count and the hyperparameters."],
        [iso_k, iso_t], [out / "isoflop_kaplan.png", out / "isoflop_tuned.png"],
        claims=[f"Kaplan-like settings: a = {iso_k.a:.3f} [{iso_k.a_ci[0]:.3f}, {iso_k.a_ci[1]:.3f}] "
                f"(published 0.834); tuned: a = {iso_t.a:.3f} [{iso_t.a_ci[0]:.3f}, {iso_t.a_ci[1]:.3f}] "
                f"(published 0.497); Approach 3 on the tuned runs: a = {alloc.a:.3f} "
                f"[{alloc.a_ci[0]:.3f}, {alloc.a_ci[1]:.3f}]."]))

    progress("3/4 Loss-to-loss on Gadre et al. (C4 models: C4 val -> PTB) ...")
    gadre = load_dataset("gadre2024")
    c4 = gadre[gadre["dataset"] == "c4_original"]
    l2l = fit_loss_to_loss(c4, x="loss_c4_val", y="loss_paloma_ptb", n="params", d="tokens",
                           source="gadre2024 c4")
    results["loss_to_loss"] = l2l.to_dict()
    sections.append(Section(
        "Loss-to-loss prediction (train-to-test)",
        ["Models trained on C4; x is the C4 validation loss, y the loss on Penn Treebank text. "
         "Brandfonbrener et al. report kappa between 0.36 and 1.08 for train-to-test pairs."],
        [l2l]))

    progress(f"4/4 Downstream tasks against compute ({config.downstream_corpus}) ...")
    sub = gadre[gadre["dataset"] == config.downstream_corpus]
    tasks = [c for c in gadre.columns if c.startswith("task_")]
    down = classify_downstream(sub, x="C", metrics=tasks, source=f"gadre2024 {config.downstream_corpus}")
    results["downstream"] = down.to_dict()
    counts = down.counts()
    sections.append(Section(
        "Do downstream tasks scale predictably?",
        ["Lourie et al. (2025) found 18 of these 46 tasks predictable. Each verdict below states the "
         "statistic behind it; thresholds are arguments of occamlab.scaling.classify_downstream."],
        [down], claims=[", ".join(f"{k}: {v}" for k, v in counts.items())]))

    res_path = atomic_write_json(out / "results.json", results, indent=1)
    report = write_report(out / "report.html", "occamlab demo: scaling laws on real measurements", sections,
                          subtitle="Porian et al. 2024 and Gadre et al. 2024 (MIT)")
    summary = {"chinchilla_params": ch.params, "approach3_a": alloc.a, "isoflop_a_tuned": iso_t.a,
               "isoflop_a_kaplan": iso_k.a, "loss_to_loss_kappa": l2l.kappa, "downstream_counts": counts}
    return DemoOutput(report=str(report), results=str(res_path), summary=summary)
