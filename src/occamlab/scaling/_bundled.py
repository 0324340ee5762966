"""Real public measurements shipped with occamlab (see ``occamlab/data/README.md`` for licences)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from occamlab.errors import ConfigError, suggest

__all__ = ["load_dataset", "DATASETS"]

DATASETS = {
    "porian2024": ("porian2024_isoflop.csv",
                   "Porian et al. 2024 isoFLOP sweeps: 1,745 (N, D, loss) points, 15 configurations (MIT)"),
    "gadre2024": ("gadre2024_models.csv",
                  "Gadre et al. 2024: 104 models, losses on 8 eval sets, 46 downstream tasks (MIT)"),
}


def load_dataset(name: str) -> Any:
    """A bundled dataset as a pandas DataFrame.

    ``porian2024``: columns ``dataset, hparams, warmup, decay, param_count, val, flops, n, tokens, loss``.
    ``gadre2024``: ``dataset, model, params, params_no_embed, tokens, multiplier, loss_*, task_*``, plus
    ``C = 6 * params * tokens`` (float, FLOPs).
    """
    import pandas as pd

    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}{suggest(name, DATASETS)}; bundled: {sorted(DATASETS)}")
    with resources.as_file(resources.files("occamlab") / "data" / DATASETS[name][0]) as path:
        df = pd.read_csv(path)
    if name == "gadre2024":
        df["C"] = 6.0 * df["params"].astype(float) * df["tokens"].astype(float)
    return df
