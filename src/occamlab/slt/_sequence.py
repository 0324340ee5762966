"""The LLC along a sequence of checkpoints (a training trajectory), one estimate per model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.slt._backends import LossFn
from occamlab.slt._llc import LLCResult, SGLDConfig, estimate_llc

__all__ = ["LLCTrajectory", "estimate_llc_trajectory"]


@dataclass(frozen=True)
class LLCTrajectory(Rendered):
    """One :class:`LLCResult` per checkpoint, with its label (a step, a path)."""

    labels: tuple[str, ...]
    results: tuple[LLCResult, ...]

    @property
    def llc(self) -> tuple[float, ...]:
        return tuple(r.llc for r in self.results)

    @property
    def valid(self) -> bool:
        """Every checkpoint's estimate passed all its own diagnostics (each ``valid``)."""
        return all(r.valid for r in self.results)

    def _tables(self) -> list[Table]:
        rows = [[lab, r.llc, r.llc_stderr, r.loss_init, len(r.warnings)]
                for lab, r in zip(self.labels, self.results, strict=True)]
        return [Table("LLC along checkpoints", ["checkpoint", "llc", "stderr", "L_n(w*)", "warnings"],
                      rows, ["the same data, settings and seed for every checkpoint"])]


def estimate_llc_trajectory(
    models: Sequence[nn.Module],
    loss_fn: LossFn,
    data: Any,
    config: SGLDConfig | None = None,
    *,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    n: int | None = None,
) -> LLCTrajectory:
    """:func:`estimate_llc` at every model of ``models`` with the same data, settings and seed
    (a non-negative integer); ``labels`` name the checkpoints (default ``"0"``, ``"1"``, ...);
    ``n`` as for :func:`estimate_llc`."""
    seed = check_seed(seed)
    models = list(models)
    if not models:
        raise ConfigError("need at least one model (checkpoint)")
    labs = [str(i) for i in range(len(models))] if labels is None else [str(v) for v in labels]
    if len(labs) != len(models):
        raise ConfigError(f"{len(labs)} labels for {len(models)} models")
    out = []
    for m in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each result carries its own warnings
            out.append(estimate_llc(m, loss_fn, data, config, seed=seed, n=n))
    return LLCTrajectory(tuple(labs), tuple(out))
