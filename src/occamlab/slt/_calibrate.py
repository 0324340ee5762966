"""Choose SGLD step size and localization from short pilot chains, as practitioners do by hand.

For every ``gamma`` in a grid and every step size ``eps`` in a grid, a short run records the
estimate, divergences, R-hat, drift and the *configurational temperature*
``T = E[(w - w*) . grad U(w)] / d``, which equals 1 for exact sampling of ``exp(-U)`` (integration
by parts) and rises above 1 with the discretization error of the Langevin step (for a quadratic
loss, ``T = 1/(1 - eps h/4)`` and the LLC estimate is inflated by the same factor), while a value
well below 1 means the chains have not spread out yet (the step is too small to mix).

Recommendation: for each ``gamma``, the largest step whose pilot has no divergence, R-hat <= 1.1,
``T <= 1 + max(tolerance, 2 se(T))`` and mean MALA acceptance >= ``min_acceptance`` (steps about x1.8
apart are walked from the one nearest the base step: upwards while pilots pass, else downwards
until one passes); then the smallest ``gamma`` whose run at that step is stable (no divergence,
R-hat <= 1.1, ``|drift z| <= 4``, ``T >= 0.9``), or the largest ``gamma`` if none is. On deep
linear networks the estimate rises steeply once ``T`` exceeds 1 (flat directions that are still
spreading keep ``T`` low while stiff ones run hot), hence the acceptance guard.
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

GRID = (0.1, 0.18, 0.32, 0.56, 1.0, 1.8, 3.2, 5.6, 10.0)  # step-size factors, about x1.8 apart


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
        heads = ["gamma", "step_size", "llc", "temperature", "acceptance", "R-hat", "drift z",
                 "diverged", "chosen"]
        rows = [
            [
                r["gamma"], r["step_size"], r["llc"], r["temperature"], r["acceptance"], r["rhat"],
                r["drift_z"], r["n_diverged"], "<-" if r["chosen"] else "",
            ]
            for r in self.rows
        ]
        rec = self.recommended
        g = "default (n beta/100, or n beta/10^4 at a flat w*)" if rec.gamma is None else f"{rec.gamma:g}"
        notes = [f"recommended: step_size={rec.step_size:g}, gamma={g}", *self.notes]
        return [Table("SGLD calibration (pilot runs)", heads, rows, notes)]


def _none_to_nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _passes(row: dict[str, Any], tolerance: float, min_acceptance: float) -> bool:
    """Mixed (R-hat <= 1.1), not hot (T <= 1 + max(tolerance, 2 se)), MALA acceptance high."""
    t, se = _none_to_nan(row["temperature"]), _none_to_nan(row["temperature_stderr"])
    slack = max(tolerance, 2 * se) if math.isfinite(se) else tolerance
    acc = _none_to_nan(row["acceptance"])
    return (
        row["n_diverged"] == 0
        and math.isfinite(t)
        and t <= 1 + slack
        and _none_to_nan(row["rhat"]) <= 1.1
        and (not math.isfinite(acc) or acc >= min_acceptance)
    )


def _stable(r: dict[str, Any]) -> bool:
    return (
        _none_to_nan(r["rhat"]) <= 1.1
        and abs(_none_to_nan(r["drift_z"])) <= 4
        and r["temperature"] >= 0.9
    )


def calibrate_sgld(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    config: SGLDConfig | None = None,
    *,
    step_sizes: Sequence[float] | None = None,
    gammas: Sequence[float] | None = None,
    n_draws: int = 200,
    n_burnin: int = 200,
    tolerance: float = 0.01,
    min_acceptance: float = 0.6,
    target_rse: float | None = None,
    max_draws_factor: float = 8.0,
    seed: int,
) -> CalibrationResult:
    """Scan step size (and gamma) with short pilot chains and recommend settings.

    Parameters
    ----------
    config : SGLDConfig, optional
        Base settings (sampler, chains, batch size, ``nbeta``); its step size centres the default
        step grid (``eps x GRID``, 0.1 to 10); the gamma "grid" is ``[config.gamma]`` (``None``:
        the estimator's default rule) unless ``gammas`` is given. Scanning gamma downwards is not
        done by default: on singular models a weaker localization lets chains wander along the
        set of minima to less singular points and the estimate keeps rising.
    step_sizes, gammas : sequences of float, optional
        The grids.
    n_draws, n_burnin : int
        Length of each pilot run.
    tolerance : float
        Accepted discretization bias as measured by the configurational temperature (widened to
        twice its Monte Carlo standard error when that is larger).
    min_acceptance : float
        Lowest accepted mean MALA acceptance probability of the Langevin proposals (a second
        guard: on deep linear networks the temperature stays near 1 while stiff directions run
        hot, and the acceptance drops).
    target_rse : float or None
        Relative Monte Carlo error to aim for: the chosen pilot's standard error, scaled to
        ``config.n_draws`` draws (``se ~ 1/sqrt(draws)``), sets ``n_draws`` to
        ``config.n_draws x (se / (target_rse |llc|))^2`` when that is larger, at most
        ``max_draws_factor`` times ``config.n_draws`` (a small coefficient, ``lambda = 1/4`` say,
        needs many draws: the per-draw spread of ``n beta L`` is about ``sqrt(lambda)``).
        ``None`` (the default) keeps ``config.n_draws``. Lengthening fixes Monte Carlo error
        only: a chain that mixes badly or runs hot stays so (on the validation suite, 8x longer
        chains moved the two-factor normal crossings further from the truth, and a badly mixing
        logistic regression cost 5 minutes), hence opt-in.
    max_draws_factor : float
        Cap on that lengthening.
    seed : int

    Returns
    -------
    CalibrationResult
        ``recommended`` keeps every field of ``config`` except ``step_size``, ``gamma`` and
        (with ``target_rse``) ``n_draws``.
    """
    base = config or SGLDConfig()
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
    steps = sorted(
        (float(s) for s in (step_sizes or [base.step_size * f for f in GRID])),
        reverse=True,
    )
    gams: list[float | None] = (
        [float(g) for g in sorted(gammas)] if gammas is not None else [base.gamma]
    )
    if not steps or not gams or any(s <= 0 for s in steps) or any(
        g is not None and g < 0 for g in gams
    ):
        raise ConfigError("step_sizes must be > 0 and gammas >= 0, and neither may be empty")
    rows: list[dict[str, Any]] = []
    chosen: dict[float | None, dict[str, Any]] = {}
    asc = sorted(steps)
    start = min(range(len(asc)), key=lambda i: abs(math.log(asc[i] / base.step_size)))
    for gamma in gams:
        def pilot(eps: float, gamma: float | None = gamma) -> dict[str, Any]:
            cfg = replace(base, step_size=eps, gamma=gamma, n_draws=n_draws, n_burnin=n_burnin)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = estimate_llc(model, loss_fn, data, cfg, seed=seed)
            n_div = sum(1 for s in res.diverged if s is not None)
            row = {
                "gamma": res.gamma, "gamma_setting": gamma, "step_size": eps, "llc": res.llc,
                "llc_stderr": res.llc_stderr, "temperature": res.temperature,
                "temperature_stderr": res.temperature_stderr, "acceptance": res.mala_acceptance,
                "rhat": res.rhat, "drift_z": res.drift_z, "n_diverged": n_div, "chosen": False,
            }
            rows.append(row)
            return row

        # walk from the grid point nearest the base step: up while pilots pass, else down until
        # one passes; the result is the largest passing step along the walk
        i = start
        row = pilot(asc[i])
        if _passes(row, tolerance, min_acceptance):
            chosen[gamma] = row
            while i + 1 < len(asc):
                i += 1
                row = pilot(asc[i])
                if not _passes(row, tolerance, min_acceptance):
                    break
                chosen[gamma] = row
        else:
            while i > 0:
                i -= 1
                row = pilot(asc[i])
                if _passes(row, tolerance, min_acceptance):
                    chosen[gamma] = row
                    break
    notes: list[str] = []
    if chosen:
        order = sorted(chosen, key=lambda g: chosen[g]["gamma"])
        good = [g for g in order if _stable(chosen[g])]
        if good:
            gamma = good[0]
        else:
            gamma = order[-1]
            notes.append(
                "no gamma gave stable pilot chains (R-hat, drift or a cold temperature): "
                "the largest gamma is returned; run longer chains"
            )
        pick = chosen[gamma]
    else:
        finite = [r for r in rows if r["n_diverged"] == 0 and math.isfinite(r["temperature"])]
        if not finite:
            raise ConfigError(
                "every pilot run diverged: extend step_sizes downwards "
                f"(smallest tried {min(steps):g})"
            )
        pick = min(finite, key=lambda r: abs(r["temperature"] - 1) + (r["rhat"] > 1.1))
        notes.append(
            "no pilot run passed every check (mixed, not hot, acceptance): the run with the "
            "temperature closest to 1 is returned; lengthen the pilot runs"
        )
    pick["chosen"] = True
    eps, gamma = pick["step_size"], pick["gamma_setting"]
    rec = replace(base, step_size=eps, gamma=gamma)
    if target_rse is not None:
        if not target_rse > 0 or not max_draws_factor >= 1:
            raise ConfigError("target_rse must be > 0 and max_draws_factor >= 1")
        llc, se = float(pick["llc"]), _none_to_nan(pick.get("llc_stderr"))
        if math.isfinite(llc) and math.isfinite(se) and llc != 0:
            se_base = se * math.sqrt(n_draws / base.n_draws)  # at the estimator's draw count
            factor = (se_base / (target_rse * abs(llc))) ** 2
            if factor > 1:
                draws = int(math.ceil(base.n_draws * min(factor, max_draws_factor)))
                rec = replace(rec, n_draws=draws)
                if factor > max_draws_factor:
                    notes.append(
                        f"reaching a relative error of {target_rse:g} would take about "
                        f"{factor:.0f}x {base.n_draws} draws per chain; capped at "
                        f"{max_draws_factor:g}x ({draws}): add chains or raise max_draws_factor"
                    )
    return CalibrationResult(tuple(rows), rec, tolerance, tuple(notes))
