"""Choose SGLD step size and localization from short pilot chains, as practitioners do by hand.

For every ``gamma`` in a grid and every step size ``eps`` in a grid, a short run records the
estimate, divergences, R-hat, drift and the *configurational temperature*
``T = E[(w - w*) . grad U(w)] / d``, which equals 1 for exact sampling of ``exp(-U)`` (integration
by parts) and rises above 1 with the discretization error of the Langevin step (for a quadratic
loss, ``T = 1/(1 - eps h/4)`` and the LLC estimate is inflated by the same factor), while a value
well below 1 means the chains have not spread out yet (the step is too small to mix).

Structure: :class:`CalibrationConfig` holds the pilots' settings; :func:`calibrate_sgld` walks
the step grid for each ``gamma`` (:func:`_walk`), picks a step and ``gamma`` (:func:`_pick`) and
optionally lengthens the chains (:func:`_lengthen`); :func:`estimate_llc_calibrated` then runs
the estimate and steps down while its own chains run hot (:func:`_checked_estimate`).

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
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.slt._backends import LossFn
from occamlab.slt._llc import LLCResult, SGLDConfig, estimate_llc, pin_nbeta

__all__ = ["CalibrationConfig", "CalibrationResult", "calibrate_sgld", "estimate_llc_calibrated"]

MAX_SLACK = 0.1  # the most a pilot's temperature may exceed 1 by, whatever its standard error
GRID = (0.1, 0.18, 0.32, 0.56, 1.0, 1.8, 3.2, 5.6, 10.0)  # step-size factors, about x1.8 apart


def _is_number(v: Any, *, allow_zero: bool = False, integer: bool = False) -> bool:
    """``v`` is a finite number (an integer with ``integer``) ``> 0`` (``>= 0`` with
    ``allow_zero``); ``bool`` is not a number here."""
    ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
    if isinstance(v, bool) or not ok_type or not math.isfinite(v):
        return False
    return v >= 0 if allow_zero else v > 0


def _positive(name: str, v: Any, *, allow_zero: bool = False, integer: bool = False) -> None:
    if not _is_number(v, allow_zero=allow_zero, integer=integer):
        what = "an integer" if integer else "a finite number"
        raise ConfigError(
            f"CalibrationConfig.{name} must be {what} {'>= 0' if allow_zero else '> 0'}, got {v!r}"
        )


@dataclass(frozen=True)
class CalibrationConfig:
    """Settings of the pilot runs of :func:`calibrate_sgld` (and :func:`estimate_llc_calibrated`).

    Parameters
    ----------
    step_sizes : tuple of float or None
        The step grid; ``None``: the ``SGLDConfig``'s step size times ``GRID`` (0.1 to 10,
        about x1.8 apart).
    gammas : tuple of float or None
        The ``gamma`` grid; ``None``: ``[config.gamma]`` (``None`` there: the estimator's default
        rule). Scanning gamma downwards is not done by default: on singular models a weaker
        localization lets chains wander along the set of minima to less singular points and
        the estimate keeps rising.
    pilot_draws, pilot_burnin : int
        Kept draws and burn-in steps per chain of each pilot run (the estimate's own lengths
        are the ``SGLDConfig``'s ``n_draws`` and ``n_burnin``).
    tolerance : float
        Accepted discretization bias as measured by the configurational temperature, in
        ``[0, 1)``: a pilot passes when ``T <= 1 + max(tolerance, min(2 se(T), 0.1))``.
    min_acceptance : float
        Lowest accepted mean MALA acceptance probability of the Langevin proposals, in
        ``[0, 1]`` (a second guard: on deep linear networks the temperature stays near 1 while
        stiff directions run hot, and the acceptance drops).
    temperature_se, max_pilot_factor : float
        A pilot whose temperature has a standard error above ``temperature_se`` is run again
        with ``pilot_draws x (se / temperature_se)^2`` draws, at most
        ``max_pilot_factor x pilot_draws`` (the temperature averages over parameters: with one
        or two of them, 200 draws cannot tell a step that runs 30% hot from an exact one).
    target_rse : float or None
        Relative Monte Carlo error to aim for: the chosen pilot's standard error, scaled to
        ``config.n_draws`` draws (``se ~ 1/sqrt(draws)``), sets ``n_draws`` to
        ``config.n_draws x (se / (target_rse |llc|))^2`` when that is larger, at most
        ``max_draws_factor`` times ``config.n_draws`` (the per-draw spread of ``n beta L`` is
        about ``sqrt(lambda)``, so a small coefficient needs many draws). ``None`` keeps
        ``config.n_draws``: lengthening fixes Monte Carlo error only, a chain that mixes badly
        or runs hot stays so, hence opt-in.
    max_draws_factor : float
        Cap on that lengthening (``>= 1``).
    """

    step_sizes: tuple[float, ...] | None = None
    gammas: tuple[float, ...] | None = None
    pilot_draws: int = 200
    pilot_burnin: int = 200
    tolerance: float = 0.01
    min_acceptance: float = 0.6
    temperature_se: float = 0.05
    max_pilot_factor: float = 8.0
    target_rse: float | None = None
    max_draws_factor: float = 8.0

    def __post_init__(self) -> None:
        for name, allow_zero in (("step_sizes", False), ("gammas", True)):
            grid = getattr(self, name)
            if grid is None:
                continue
            values = () if isinstance(grid, str) else tuple(grid)
            if not values or not all(_is_number(v, allow_zero=allow_zero) for v in values):
                raise ConfigError(
                    "step_sizes must be > 0 and gammas >= 0, and neither may be empty; "
                    f"got {name}={grid!r}"
                )
            object.__setattr__(self, name, tuple(float(v) for v in values))
        _positive("pilot_draws", self.pilot_draws, integer=True)
        _positive("pilot_burnin", self.pilot_burnin, allow_zero=True, integer=True)
        if not 0 <= self.tolerance < 1:
            raise ConfigError(f"tolerance must be in [0, 1), got {self.tolerance}")
        if not 0 <= self.min_acceptance <= 1:
            raise ConfigError(f"min_acceptance must be in [0, 1], got {self.min_acceptance}")
        if not self.temperature_se > 0 or not self.max_pilot_factor >= 1:
            raise ConfigError(
                f"temperature_se must be > 0 and max_pilot_factor >= 1, got {self.temperature_se} "
                f"and {self.max_pilot_factor}"
            )
        if (self.target_rse is not None and not self.target_rse > 0) or not self.max_draws_factor >= 1:
            raise ConfigError("target_rse must be > 0 and max_draws_factor >= 1")

    def step_grid(self, base: SGLDConfig) -> list[float]:
        """The step sizes, ascending."""
        return sorted(self.step_sizes or [base.step_size * f for f in GRID])

    def gamma_grid(self, base: SGLDConfig) -> list[float | None]:
        """The ``gamma`` values, ascending (``[base.gamma]`` by default)."""
        return [float(g) for g in sorted(self.gammas)] if self.gammas is not None else [base.gamma]


@dataclass(frozen=True)
class CalibrationResult(Rendered):
    """The pilot runs of :func:`calibrate_sgld` and the settings it recommends."""

    rows: tuple[dict[str, Any], ...]
    recommended: SGLDConfig
    tolerance: float
    notes: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """The calibration passed all its own checks: a pilot passed, a ``gamma`` gave stable
        chains and the target relative error was reachable (``notes`` is empty)."""
        return not self.notes

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


def _pilot_checks(res: LLCResult) -> dict[str, Any]:
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
    model: nn.Module, loss_fn: LossFn, data: Any, cfg: SGLDConfig, *, seed: int, n: int | None,
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


class _Pilots:
    """Runs pilot chains at ``(step, gamma)`` and keeps every row, in the order run."""

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, data: Any, base: SGLDConfig,
        calibration: CalibrationConfig, seed: int,
    ) -> None:
        self.model, self.loss_fn, self.data, self.base = model, loss_fn, data, base
        self.calibration, self.seed = calibration, seed
        self.rows: list[dict[str, Any]] = []

    def run(self, eps: float, gamma: float | None) -> dict[str, Any]:
        c = self.calibration
        cfg = replace(self.base, step_size=eps, gamma=gamma, n_draws=c.pilot_draws,
                      n_burnin=c.pilot_burnin)
        res, _ = _estimate_precise(
            self.model, self.loss_fn, self.data, cfg, seed=self.seed, n=None,
            temperature_se=c.temperature_se,
            max_draws=math.ceil(c.pilot_draws * c.max_pilot_factor),
        )
        row = {
            "gamma": res.gamma, "gamma_setting": gamma, "step_size": eps, "llc": res.llc,
            "llc_stderr": res.llc_stderr, **_pilot_checks(res), "rhat": res.rhat,
            "drift_z": res.drift_z, "pilot_draws": res.config.n_draws, "chosen": False,
        }
        self.rows.append(row)
        return row


def _walk(
    pilots: _Pilots, gamma: float | None, steps: list[float], start: int
) -> dict[str, Any] | None:
    """The largest passing step of a walk over the ascending ``steps`` from ``steps[start]``:
    upwards while pilots pass, else downwards until one passes; ``None`` if none did."""
    c = pilots.calibration
    i = start
    row = pilots.run(steps[i], gamma)
    chosen = None
    if _passes(row, c.tolerance, c.min_acceptance):
        chosen = row
        while i + 1 < len(steps):
            i += 1
            row = pilots.run(steps[i], gamma)
            if not _passes(row, c.tolerance, c.min_acceptance):
                break
            chosen = row
    else:
        while i > 0:
            i -= 1
            row = pilots.run(steps[i], gamma)
            if _passes(row, c.tolerance, c.min_acceptance):
                chosen = row
                break
    return chosen


def _pick(
    chosen: dict[float | None, dict[str, Any]], rows: list[dict[str, Any]], smallest_step: float
) -> tuple[dict[str, Any], list[str]]:
    """The recommended pilot: of each gamma's walk result, the smallest ``gamma`` whose chains
    are stable (else the largest ``gamma``); with no passing pilot, the finite run whose
    temperature is closest to 1 (R-hat > 1.1 counting as 1 more). Returns it and the notes."""
    if chosen:
        order = sorted(chosen, key=lambda g: chosen[g]["gamma"])
        good = [g for g in order if _stable(chosen[g])]
        if good:
            return chosen[good[0]], []
        return chosen[order[-1]], [
            "no gamma gave stable pilot chains (R-hat, drift or a cold temperature): "
            "the largest gamma is returned; run longer chains"
        ]
    finite = [r for r in rows if r["n_diverged"] == 0 and math.isfinite(r["temperature"])]
    if not finite:
        raise ConfigError(
            f"every pilot run diverged: extend step_sizes downwards (smallest tried {smallest_step:g})"
        )
    return min(finite, key=lambda r: abs(r["temperature"] - 1) + (r["rhat"] > 1.1)), [
        "no pilot run passed every check (mixed, not hot, acceptance): the run with the "
        "temperature closest to 1 is returned; lengthen the pilot runs"
    ]


def _lengthen(
    rec: SGLDConfig, pick: dict[str, Any], base: SGLDConfig, calibration: CalibrationConfig
) -> tuple[SGLDConfig, list[str]]:
    """``rec`` with ``n_draws = base.n_draws x min((se / (target_rse |llc|))^2,
    max_draws_factor)`` when that is larger (``se`` the pilot's, scaled to ``base.n_draws``)."""
    if calibration.target_rse is None:
        return rec, []
    llc, se = float(pick["llc"]), _none_to_nan(pick.get("llc_stderr"))
    if not (math.isfinite(llc) and math.isfinite(se) and llc != 0):
        return rec, []
    se_base = se * math.sqrt(pick["pilot_draws"] / base.n_draws)  # at the final length
    factor = (se_base / (calibration.target_rse * abs(llc))) ** 2
    if factor <= 1:
        return rec, []
    draws = int(math.ceil(base.n_draws * min(factor, calibration.max_draws_factor)))
    notes = []
    if factor > calibration.max_draws_factor:
        notes.append(
            f"reaching a relative error of {calibration.target_rse:g} would take about "
            f"{factor:.0f}x {base.n_draws} draws per chain; capped at "
            f"{calibration.max_draws_factor:g}x ({draws}): add chains or raise max_draws_factor"
        )
    return replace(rec, n_draws=draws), notes


def calibrate_sgld(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    config: SGLDConfig | None = None,
    *,
    calibration: CalibrationConfig | None = None,
    seed: int = 0,
) -> CalibrationResult:
    """Scan step size (and gamma) with short pilot chains and recommend settings.

    For each ``gamma`` of the grid, pilots walk the step grid from the step nearest
    ``config.step_size``: upwards while they pass, else downwards until one passes. A pilot
    passes when no chain diverged, its configurational temperature
    ``T = E[(w - w*) . grad U(w)] / d <= 1 + max(tolerance, min(2 se(T), 0.1))`` and its mean
    MALA acceptance ``>= min_acceptance``. Then the smallest ``gamma`` whose chosen pilot is
    stable (R-hat ``<= 1.1``, ``|drift z| <= 4``, ``T >= 0.9``) is recommended.

    Parameters
    ----------
    model, loss_fn, data
        As for :func:`estimate_llc`.
    config : SGLDConfig, optional
        Base settings (sampler, chains, batch size, ``nbeta``); its step size centres the
        default step grid, its ``gamma`` is the default gamma grid, its ``n_draws`` is what
        ``target_rse`` lengthens.
    calibration : CalibrationConfig, optional
        The grids, the pilots' length and the pass criteria.
    seed : int
        Non-negative; seeds every pilot run.

    Returns
    -------
    CalibrationResult
        ``recommended`` keeps every field of ``config`` except ``step_size``, ``gamma`` and
        (with ``target_rse``) ``n_draws``.

    Raises
    ------
    ConfigError
        A bad seed, or every pilot run diverged.
    """
    seed = check_seed(seed)
    base = config or SGLDConfig()
    calibration = calibration or CalibrationConfig()
    steps = calibration.step_grid(base)
    start = min(range(len(steps)), key=lambda i: abs(math.log(steps[i] / base.step_size)))
    pilots = _Pilots(model, loss_fn, data, base, calibration, seed)
    chosen: dict[float | None, dict[str, Any]] = {}
    for gamma in calibration.gamma_grid(base):
        row = _walk(pilots, gamma, steps, start)
        if row is not None:
            chosen[gamma] = row
    pick, notes = _pick(chosen, pilots.rows, steps[0])
    pick["chosen"] = True
    rec = replace(base, step_size=pick["step_size"], gamma=pick["gamma_setting"])
    rec, more = _lengthen(rec, pick, base, calibration)
    return CalibrationResult(tuple(pilots.rows), rec, calibration.tolerance, (*notes, *more))


def _checked_estimate(
    model: nn.Module, loss_fn: LossFn, data: Any, cfg: SGLDConfig, *, seed: int, n: int | None,
    calibration: CalibrationConfig, max_draws: int, max_step_downs: int, final_tolerance: float,
) -> tuple[LLCResult, list[warnings.WarningMessage], list[str]]:
    """Estimate at ``cfg`` (lengthened while its temperature is too noisy to judge); while its
    own chains run hot (``T > 1 + max(final_tolerance, 2 se)``, a divergence or a low MALA
    acceptance) divide the step by 1.8 and rerun, at most ``max_step_downs`` times, then take
    the coolest run. Returns the run, the warnings it raised and the notes on the reruns."""
    notes: list[str] = []
    runs: list[tuple[LLCResult, list[warnings.WarningMessage]]] = []
    while True:
        res, caught = _estimate_precise(model, loss_fn, data, cfg, seed=seed, n=n,
                                        temperature_se=calibration.temperature_se,
                                        max_draws=max_draws)
        cfg = res.config
        runs.append((res, caught))
        checks = _pilot_checks(res)
        if _passes(checks, final_tolerance, calibration.min_acceptance, max_slack=math.inf):
            return res, caught, notes
        if len(runs) > max_step_downs:
            res, caught = min(runs, key=lambda rc: rc[0].temperature
                              if math.isfinite(rc[0].temperature) else math.inf)
            notes.append(
                f"every run was hot; the one with the lowest temperature (step "
                f"{res.config.step_size:.3g}) is returned: lengthen burn-in and draws"
            )
            return res, caught, notes
        smaller = cfg.step_size / 1.8
        notes.append(
            f"the estimate at step {cfg.step_size:.3g} ran hot (temperature "
            f"{res.temperature:.2f} +- {res.temperature_stderr:.2f}, {checks['n_diverged']} "
            f"diverged chains): rerun at step {smaller:.3g}"
        )
        cfg = replace(cfg, step_size=smaller)


def estimate_llc_calibrated(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    config: SGLDConfig | None = None,
    *,
    calibration: CalibrationConfig | None = None,
    seed: int = 0,
    n: int | None = None,
    max_step_downs: int = 3,
    final_tolerance: float = 0.05,
) -> tuple[LLCResult, CalibrationResult]:
    """Calibrate (:func:`calibrate_sgld`), estimate, and check the estimate's own chains.

    The estimate runs at least as many draws as the chosen pilot (which was lengthened until its
    temperature was precise), and is itself lengthened the same way when its temperature's
    standard error exceeds ``temperature_se`` (up to the larger of ``max_pilot_factor`` and
    ``max_draws_factor`` times the configured draws), so its configurational temperature is the
    most precise check there is of the chosen step. If it runs significantly hot
    (``T > 1 + max(final_tolerance, 2 se)``, a diverged chain, or a low MALA acceptance), the
    step is divided by 1.8 (one grid point) and the estimate rerun, at most ``max_step_downs``
    times; if every run is hot, the one with the lowest temperature is returned. This matters
    on singular models with weak localization: a chain that wanders far along a flat direction
    meets curvature that grows with the distance, and a step that looked stable in the pilots
    is thrown off over a few thousand draws (the normal crossing ``w1 w2``, validation seed 1:
    pilot temperature 0.97 at step 0.0096, the estimate's own 1.67 +- 0.29 and 60% high; at
    step 0.00165: 1.12 +- 0.08 and 0.49 against a truth of 0.5). The reruns are listed in the
    result's warnings.

    ``final_tolerance`` (0.05) is looser than the pilots' ``tolerance``: the check is there to
    catch gross hotness; with hundreds of parameters the temperature is precise to 1%, and
    stepping down for a 2% excess (linear regression, 1,200 parameters) left chains that had not
    mixed (R-hat 2.1) and an estimate that was worse.

    ``n`` (what ``L_n`` averages over, when not the rows of ``data``) pins ``n beta`` for the
    pilots too (:func:`pin_nbeta`), so that pilots and estimate sample the same posterior.
    The pilots are seeded by ``seed``, the estimate by ``seed + 1000``.

    Returns the accepted estimate and the calibration.
    """
    seed = check_seed(seed)
    if not 0 <= final_tolerance < 1 or max_step_downs < 0:
        raise ConfigError("final_tolerance must be in [0, 1) and max_step_downs >= 0")
    base = config or SGLDConfig()
    if n is not None:  # the pilots see the rows of ``data``
        base = pin_nbeta(base, n)
    calibration = calibration or CalibrationConfig()
    cal = calibrate_sgld(model, loss_fn, data, base, calibration=calibration, seed=seed)
    chosen = next((r for r in cal.rows if r["chosen"]), None)
    cfg = cal.recommended
    if chosen is not None and int(chosen["pilot_draws"]) > cfg.n_draws:
        cfg = replace(cfg, n_draws=int(chosen["pilot_draws"]))
    factor = max(calibration.max_pilot_factor, calibration.max_draws_factor)
    max_draws = math.ceil(base.n_draws * factor)
    res, caught, notes = _checked_estimate(
        model, loss_fn, data, cfg, seed=seed + 1000, n=n, calibration=calibration,
        max_draws=max_draws, max_step_downs=max_step_downs, final_tolerance=final_tolerance,
    )
    for w in caught:  # the returned run's own warnings, once
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if notes:
        res = replace(res, warnings=(*notes, *res.warnings))
    return res, cal
