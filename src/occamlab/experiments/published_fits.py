"""The ``published-fits`` experiment: scaling-law fits of published measurements (no training).

1. Chinchilla Approach 3 on Porian et al.'s (2024) tuned isoFLOP sweep (RefinedWeb), with the
   compute-optimal allocation and an extrapolation check without the two largest model sizes.
2. Approach 2 on the same sweep and on its Kaplan-like settings: Porian et al. report
   ``N_opt ~ C^0.834`` under Kaplan-like settings and ``C^0.497`` with tuned settings.
3. Loss-to-loss (Brandfonbrener et al. 2024): Gadre et al.'s (2024) C4 models, C4 validation loss
   against Penn Treebank loss (train-to-test).
4. Downstream metrics (Lourie et al. 2025): which of Gadre et al.'s 46 tasks scale predictably.

The run writes ``fits.json`` (each result's ``to_dict()``); the ``published`` suite experiment
draws its section from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, check_seed

from ._registry import RunOutput

__all__ = ["Config", "TUNED", "KAPLAN", "compute", "run"]

TUNED = {"dataset": "rw", "hparams": "tuned", "warmup": "short", "decay": "const",
         "param_count": "standard", "val": "val"}
KAPLAN = {"dataset": "rw", "hparams": "base", "warmup": "long", "decay": "kaplan",
          "param_count": "kaplan", "val": "train"}
BUDGETS = (1e18, 1e20, 1e22, 5.76e23)  # 5.76e23: Chinchilla's own budget


@dataclass(frozen=True)
class Config(ConfigBase):
    """Bootstrap resamples and seed of the fits; the corpus of the downstream verdicts."""

    bootstrap: int = 200
    seed: int = 0
    downstream_corpus: str = "rw_original"

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if isinstance(self.bootstrap, bool) or not 0 <= self.bootstrap <= 100_000:
            raise ConfigError(f"bootstrap must be in [0, 100000], got {self.bootstrap!r}")


def _select(df: Any, keys: dict[str, str]) -> Any:
    m = None
    for k, v in keys.items():
        m = (df[k] == v) if m is None else m & (df[k] == v)
    return df[m].copy()


def compute(config: Config) -> dict[str, Any]:
    """Every fit, as ``{name: result.to_dict()}``."""
    from occamlab.scaling import (
        classify_downstream,
        fit_chinchilla,
        fit_isoflop,
        fit_loss_to_loss,
        load_dataset,
    )

    porian = load_dataset("porian2024")
    tuned, kaplan = _select(porian, TUNED), _select(porian, KAPLAN)
    ch = fit_chinchilla(tuned, n="n", d="tokens", loss="loss", bootstrap=config.bootstrap,
                        budgets=BUDGETS, holdout=2, seed=config.seed,
                        source="porian2024 (tuned)")
    iso_t = fit_isoflop(tuned, n="n", flops="flops", loss="loss", seed=config.seed,
                        source="porian2024 (tuned)")
    iso_k = fit_isoflop(kaplan, n="n", flops="flops", loss="loss", seed=config.seed,
                        source="porian2024 (Kaplan-like)")
    gadre = load_dataset("gadre2024")
    c4 = gadre[gadre["dataset"] == "c4_original"]
    l2l = fit_loss_to_loss(c4, x="loss_c4_val", y="loss_paloma_ptb", n="params", d="tokens",
                           source="gadre2024 c4")
    sub = gadre[gadre["dataset"] == config.downstream_corpus]
    if sub.empty:
        raise ConfigError(f"gadre2024 has no corpus {config.downstream_corpus!r}")
    tasks = [c for c in gadre.columns if c.startswith("task_")]
    down = classify_downstream(sub, x="C", metrics=tasks,
                               source=f"gadre2024 {config.downstream_corpus}")
    return {"chinchilla": ch.to_dict(), "isoflop_tuned": iso_t.to_dict(),
            "isoflop_kaplan": iso_k.to_dict(), "loss_to_loss": l2l.to_dict(),
            "downstream": down.to_dict()}


def run(config: Config, run_dir: Path) -> RunOutput:
    fits = compute(config)
    atomic_write_json(Path(run_dir) / "fits.json", fits, indent=None)
    ch = fits["chinchilla"]
    out = {"E": ch["fit"]["params"]["E"], "alpha": ch["fit"]["params"]["alpha"],
           "beta": ch["fit"]["params"]["beta"], "a_approach3": ch["allocation"]["a"],
           "a_isoflop_tuned": fits["isoflop_tuned"]["a"],
           "a_isoflop_kaplan": fits["isoflop_kaplan"]["a"]}
    return RunOutput(out, files=("fits.json",))
