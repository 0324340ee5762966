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

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.slt._llc import LLCResult, SGLDConfig, default_nbeta, estimate_llc

__all__ = ["CalibrationResult", "calibrate_sgld", "estimate_llc_calibrated"]

MAX_SLACK = 0.1  # the most a pilot's temperature may exceed 1 by, whatever its standard error
GRID = (0.1, 0.18, 0.32, 0.56, 1.0, 1.8, 3.2, 5.6, 10.0)  # step-size factors, about x1.8 apart


@dataclass(frozen=True)
class CalibrationResult(Rendered):
    """The pilot runs of :func:`calibrate_sgld` and the settings it recommends."""

    rows: tuple[dict[str, Any], ...]
    recommended: SGLDConfig
    tolerance: float
    notes: tuple[str, ...]

    def _tables(self) -> list[Table]:
        heads = ["gamma", "step_size", "draws", "llc", "temperature", "acceptance", "R-hat",
                 "drift z", "diverged", "chosen"]
        rows = [
            [
                r["gamma"], r["step_size"], r.get("pilot_draws"), r["llc"], r["temperature"],
                r["acceptance"], r["rhat"],
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


def _diagnostics(res: LLCResult) -> dict[str, Any]:
    """The fields of a result that :func:`_passes` reads."""
    return {
        "temperature": res.temperature, "temperature_stderr": res.temperature_stderr,
        "acceptance": res.mala_acceptance,
        "n_diverged": sum(1 for s in res.diverged if s is not None),
    }


def _passes(
    row: dict[str, Any], tolerance: float, min_acceptance: float, max_slack: float = MAX_SLACK
) -> bool:
    """Not hot: no divergence, T <= 1 + max(tolerance, min(2 se, 0.1)), MALA acceptance high.

    The slack for Monte Carlo error is capped at 0.1: with one or two parameters the
    temperature is heavy-tailed exactly when a step runs hot (chains thrown far along flat
    directions), and an uncapped ``2 se`` then accepts steps that are 20-30% hot.

    R-hat is left out on purpose: short pilots at a small step mix slowly and fail it, and
    walking further down only mixes worse (it is used for the choice of gamma).
    """
    t, se = _none_to_nan(row["temperature"]), _none_to_nan(row["temperature_stderr"])
    slack = max(tolerance, min(2 * se, max_slack)) if math.isfinite(se) else tolerance
    acc = _none_to_nan(row["acceptance"])
    return (
        row["n_diverged"] == 0
        and math.isfinite(t)
        and t <= 1 + slack
        and (not math.isfinite(acc) or acc >= min_acceptance)
    )


def _estimate_precise(
    model: nn.Module, loss_fn: Any, data: Any, cfg: SGLDConfig, *, seed: int, n: int | None,
    temperature_se: float, max_draws: int,
) -> tuple[LLCResult, list[warnings.WarningMessage]]:
    """:func:`estimate_llc`, run once more with ``n_draws x (se / temperature_se)^2`` draws (at
    most ``max_draws``) when its temperature is too noisy to tell hot from exact (few
    parameters); returns the kept run and the warnings it raised."""
    for attempt in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = estimate_llc(model, loss_fn, data, cfg, seed=seed, n=n)
        se = res.temperature_stderr
        if attempt or not (math.isfinite(se) and se > temperature_se and cfg.n_draws < max_draws):
            break
        cfg = replace(cfg, n_draws=min(max_draws, math.ceil(cfg.n_draws * (se / temperature_se) ** 2)))
    return res, list(caught)


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
    temperature_se: float = 0.05,
    max_pilot_factor: float = 8.0,
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
    temperature_se, max_pilot_factor : float
        A pilot whose temperature has a standard error above ``temperature_se`` is run again
        with ``n_draws x (se / temperature_se)^2`` draws, at most ``max_pilot_factor x n_draws``
        (the temperature averages over parameters: with one or two of them, 200 draws cannot
        tell a step that runs 30% hot from an exact one; with hundreds they can).
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
    if not temperature_se > 0 or not max_pilot_factor >= 1:
        raise ConfigError(
            f"temperature_se must be > 0 and max_pilot_factor >= 1, got {temperature_se} and "
            f"{max_pilot_factor}"
        )
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
            res, _ = _estimate_precise(
                model, loss_fn, data, cfg, seed=seed, n=None, temperature_se=temperature_se,
                max_draws=math.ceil(n_draws * max_pilot_factor),
            )
            row = {
                "gamma": res.gamma, "gamma_setting": gamma, "step_size": eps, "llc": res.llc,
                "llc_stderr": res.llc_stderr, **_diagnostics(res), "rhat": res.rhat,
                "drift_z": res.drift_z, "pilot_draws": res.config.n_draws, "chosen": False,
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
            se_base = se * math.sqrt(pick["pilot_draws"] / base.n_draws)  # at the final length
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


def estimate_llc_calibrated(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    config: SGLDConfig | None = None,
    *,
    seed: int,
    max_step_downs: int = 3,
    final_tolerance: float = 0.05,
    n: int | None = None,
    **calibrate_kwargs: Any,
) -> tuple[LLCResult, CalibrationResult]:
    """Calibrate (:func:`calibrate_sgld`), estimate, and check the estimate's own chains.

    The estimate runs at least as many draws as the chosen pilot (which was lengthened until its
    temperature was precise), and is itself lengthened the same way when its temperature's
    standard error exceeds ``temperature_se`` (up to the larger of ``max_pilot_factor`` and
    ``max_draws_factor`` times the configured draws), so its configurational temperature is the
    most precise check there is of the chosen step. If it runs significantly hot (``T > 1 + max(final_tolerance,
    2 se)``, a diverged chain, or a low MALA acceptance), the step is divided by 1.8 (one grid
    point) and the estimate rerun, at most ``max_step_downs`` times; if every run is hot, the
    one with the lowest temperature is returned. This matters on singular models with weak
    localization: a chain that wanders far along a flat direction meets curvature that grows
    with the distance, and a step that looked stable in the pilots is thrown off over a few
    thousand draws (the normal crossing ``w1 w2``, validation seed 1: pilot temperature 0.97 at
    step 0.0096, the estimate's own 1.67 +- 0.29 and 60% high; at step 0.00165: 1.12 +- 0.08
    and 0.49 against a truth of 0.5). The reruns are listed in the result's warnings.

    ``final_tolerance`` (0.05) is looser than the pilots' ``tolerance``: the check is there to
    catch gross hotness; with hundreds of parameters the temperature is precise to 1%, and
    stepping down for a 2% excess (linear regression, 1,200 parameters) left chains that had not
    mixed (R-hat 2.1) and an estimate that was worse.

    Returns the accepted estimate and the calibration.
    """
    if not 0 <= final_tolerance < 1 or max_step_downs < 0:
        raise ConfigError("final_tolerance must be in [0, 1) and max_step_downs >= 0")
    if n is not None and (config is None or config.nbeta is None):
        # the pilots see the rows of ``data``; pin n beta to the estimate's n so that both
        # sample the same tempered posterior
        config = replace(config or SGLDConfig(), nbeta=default_nbeta(n))
    cal = calibrate_sgld(model, loss_fn, data, config, seed=seed, **calibrate_kwargs)
    def setting(name: str) -> float:  # calibrate_sgld's value of one of its settings
        return float(calibrate_kwargs.get(name, _CALIBRATE_DEFAULTS[name]))

    min_acc, t_se_target = setting("min_acceptance"), setting("temperature_se")
    max_draws = math.ceil((config or SGLDConfig()).n_draws
                          * max(setting("max_pilot_factor"), setting("max_draws_factor")))
    chosen = next((r for r in cal.rows if r["chosen"]), None)
    cfg = cal.recommended
    if chosen is not None and int(chosen["pilot_draws"]) > cfg.n_draws:
        cfg = replace(cfg, n_draws=int(chosen["pilot_draws"]))
    notes: list[str] = []
    runs: list[tuple[LLCResult, list[warnings.WarningMessage]]] = []
    while True:
        # lengthened first if its temperature is too noisy to judge, as the pilots are
        res, caught = _estimate_precise(model, loss_fn, data, cfg, seed=seed + 1000, n=n,
                                        temperature_se=t_se_target, max_draws=max_draws)
        cfg = res.config
        runs.append((res, caught))
        diag = _diagnostics(res)
        if _passes(diag, final_tolerance, min_acc, max_slack=math.inf):
            break
        if len(runs) > max_step_downs:
            res, caught = min(runs, key=lambda rc: rc[0].temperature
                              if math.isfinite(rc[0].temperature) else math.inf)
            notes.append(
                f"every run was hot; the one with the lowest temperature (step "
                f"{res.config.step_size:.3g}) is returned: lengthen burn-in and draws"
            )
            break
        smaller = cfg.step_size / 1.8
        notes.append(
            f"the estimate at step {cfg.step_size:.3g} ran hot (temperature "
            f"{res.temperature:.2f} +- {res.temperature_stderr:.2f}, {diag['n_diverged']} "
            f"diverged chains): rerun at step {smaller:.3g}"
        )
        cfg = replace(cfg, step_size=smaller)
    for w in caught:  # the returned run's own warnings, once
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if notes:
        res = replace(res, warnings=(*notes, *res.warnings))
    return res, cal


_CALIBRATE_DEFAULTS = {
    k: p.default for k, p in inspect.signature(calibrate_sgld).parameters.items()
    if p.default is not inspect.Parameter.empty
}
