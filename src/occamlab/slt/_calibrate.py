"""Choose SGLD step size and localization from short pilot chains, as practitioners do by hand.

For every ``gamma`` in a grid and every step size ``eps`` in a grid, a short run records the
estimate, divergences, R-hat, drift and the *configurational temperature*
``T = E[(w - w*) . grad U(w)] / d``, which equals 1 for exact sampling of ``exp(-U)`` (integration
by parts) and rises above 1 with the discretization error of the Langevin step (for a quadratic
loss, ``T = 1/(1 - eps h/4)`` and the LLC estimate is inflated by the same factor), while a value
well below 1 means the chains have not spread out yet (the step is too small to mix).

Recommendation: for each ``gamma``, the largest step with no divergence and ``T <= 1 + tolerance``;
then the smallest ``gamma`` whose run at that step is stable (no divergence, R-hat <= 1.1,
``|drift z| <= 4``, ``T >= 1 - 2 tolerance``), or the largest ``gamma`` if none is.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from occamlab._render import Rendered, Table, jsonable
from occamlab.errors import ConfigError
from occamlab.slt._llc import SGLDConfig, estimate_llc

__all__ = ["CalibrationResult", "calibrate_sgld"]


@dataclass(frozen=True)
class CalibrationResult(Rendered):
    """The pilot runs of :func:`calibrate_sgld` and the settings it recommends."""

    rows: tuple[dict[str, Any], ...]
    recommended: SGLDConfig
    tolerance: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "rows": [dict(r) for r in self.rows],
                "recommended": self.recommended.to_dict(),
                "tolerance": self.tolerance,
                "notes": list(self.notes),
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationResult:
        return cls(
            rows=tuple(dict(r) for r in d["rows"]),
            recommended=SGLDConfig.from_dict(d["recommended"]),
            tolerance=float(d["tolerance"]),
            notes=tuple(d["notes"]),
        )

    def _tables(self) -> list[Table]:
        heads = ["gamma", "step_size", "llc", "temperature", "R-hat", "drift z", "diverged", "chosen"]
        rows = [
            [
                r["gamma"], r["step_size"], r["llc"], r["temperature"], r["rhat"], r["drift_z"],
                r["n_diverged"], "<-" if r["chosen"] else "",
            ]
            for r in self.rows
        ]
        rec = self.recommended
        notes = [f"recommended: step_size={rec.step_size:g}, gamma={rec.gamma:g}", *self.notes]
        return [Table("SGLD calibration (pilot runs)", heads, rows, notes)]


def _none_to_nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def calibrate_sgld(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    config: SGLDConfig | None = None,
    *,
    step_sizes: Sequence[float] | None = None,
    gammas: Sequence[float] | None = None,
    n_draws: int = 150,
    n_burnin: int = 150,
    tolerance: float = 0.05,
    seed: int,
) -> CalibrationResult:
    """Scan step size (and gamma) with short pilot chains and recommend settings.

    Parameters
    ----------
    config : SGLDConfig, optional
        Base settings (sampler, chains, batch size, ``nbeta``); its step size and gamma centre the
        default grids (step sizes ``eps x {1/10, 1/3, 1, 3, 10}``, gamma as given).
    step_sizes, gammas : sequences of float, optional
        The grids.
    n_draws, n_burnin : int
        Length of each pilot run.
    tolerance : float
        Accepted discretization bias as measured by the configurational temperature.
    seed : int

    Returns
    -------
    CalibrationResult
        ``recommended`` keeps every field of ``config`` except ``step_size`` and ``gamma``.
    """
    base = config or SGLDConfig()
    if not 0 < tolerance < 1:
        raise ConfigError(f"tolerance must be in (0, 1), got {tolerance}")
    steps = sorted(
        (float(s) for s in (step_sizes or [base.step_size * f for f in (0.1, 1 / 3, 1, 3, 10)])),
        reverse=True,
    )
    if gammas is None and base.gamma is None:
        from occamlab.slt._llc import default_nbeta
        from occamlab.slt._sgld import as_tensors

        nb = base.nbeta or default_nbeta(int(as_tensors(data)[0].shape[0]))
        gammas = [nb / 1000, nb / 100, nb / 10]
    gams = sorted(float(g) for g in (gammas or [base.gamma]))
    if not steps or not gams or any(s <= 0 for s in steps) or any(g < 0 for g in gams):
        raise ConfigError("step_sizes must be > 0 and gammas >= 0, and neither may be empty")
    rows: list[dict[str, Any]] = []
    chosen: dict[float, dict[str, Any]] = {}
    for gamma in gams:
        for eps in steps:
            cfg = replace(base, step_size=eps, gamma=gamma, n_draws=n_draws, n_burnin=n_burnin)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = estimate_llc(model, loss_fn, data, cfg, seed=seed)
            n_div = sum(1 for s in res.diverged if s is not None)
            row = {
                "gamma": gamma, "step_size": eps, "llc": res.llc, "temperature": res.temperature,
                "rhat": res.rhat, "drift_z": res.drift_z, "n_diverged": n_div, "chosen": False,
            }
            rows.append(row)
            ok = n_div == 0 and math.isfinite(res.temperature) and math.isfinite(res.llc)
            if ok and res.temperature <= 1 + tolerance and gamma not in chosen:
                chosen[gamma] = row  # steps go from large to small: the first that passes
        # the largest step is cheap to skip once one passes; keep scanning for the table
    notes: list[str] = []
    if not chosen:
        eps, gamma = min(steps), max(gams)
        notes.append(
            "no pilot run passed (all diverged or ran hot): smallest step and largest gamma "
            "returned; extend the grids downwards"
        )
    else:
        def stable(r: dict[str, Any]) -> bool:
            return (
                _none_to_nan(r["rhat"]) <= 1.1
                and abs(_none_to_nan(r["drift_z"])) <= 4
                and r["temperature"] >= 1 - 2 * tolerance
            )

        good = [g for g in sorted(chosen) if stable(chosen[g])]
        if good:
            gamma = good[0]
        else:
            gamma = max(chosen)
            notes.append(
                "no gamma gave stable pilot chains (R-hat, drift or a cold temperature): "
                "the largest gamma is returned; run longer chains"
            )
        eps = chosen[gamma]["step_size"]
        chosen[gamma]["chosen"] = True
    rec = replace(base, step_size=eps, gamma=gamma)
    return CalibrationResult(tuple(rows), rec, tolerance, tuple(notes))
