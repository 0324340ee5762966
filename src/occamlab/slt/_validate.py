"""The known-lambda validation suite: estimate the LLC of models whose coefficient is exact.

Each case is a torch model at a true parameter with data generated for it (see ``_models``); the
estimator runs with its default settings after :func:`calibrate_sgld` has picked the step size and
``gamma`` from pilot chains and the chain length for a relative Monte Carlo error of about 5%, and
the estimate is rerun at a smaller step if its own chains run hot
(:func:`estimate_llc_calibrated`). The relative error ``|estimate - truth| / truth`` is reported per case,
with the median and the maximum over the suite.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed, suggest
from occamlab.slt._calibrate import CalibrationConfig, estimate_llc_calibrated
from occamlab.slt._llc import SGLDConfig
from occamlab.slt._models import (
    KnownModel,
    make_dln,
    make_linear_regression,
    make_logistic_regression,
    make_normal_crossing,
    make_rrr,
)

__all__ = ["ValidationCase", "ValidationResult", "VALIDATION_CASES", "validate_llc"]


@dataclass(frozen=True)
class ValidationCase:
    """One suite entry: a name and a builder ``seed -> KnownModel``."""

    name: str
    build: Callable[[int], KnownModel]
    fast: bool = False  # part of the cheap subset run by the fast tests


def _cases() -> tuple[ValidationCase, ...]:
    c = ValidationCase
    return (
        c("regular/linreg-5x4", lambda s: make_linear_regression(5, 4, n=10_000, seed=s), True),
        c("regular/logreg-10", lambda s: make_logistic_regression(10, n=10_000, seed=s), True),
        c("regular/linreg-40x30", lambda s: make_linear_regression(40, 30, n=4_000, seed=s)),
        c("normal_crossing/w^2", lambda s: make_normal_crossing([1], n=100_000, seed=s), True),
        c("normal_crossing/w^4", lambda s: make_normal_crossing([2], n=100_000, seed=s)),
        c("normal_crossing/w1 w2^2", lambda s: make_normal_crossing([1, 2], n=100_000, seed=s)),
        c("normal_crossing/w1 w2", lambda s: make_normal_crossing([1, 1], n=100_000, seed=s)),
        c("rrr/4-3-4-r1", lambda s: make_rrr(4, 3, 4, 1, n=10_000, seed=s), True),
        c("rrr/5-3-5-r3", lambda s: make_rrr(5, 3, 5, 3, n=10_000, seed=s)),
        c("rrr/12-6-10-r2", lambda s: make_rrr(12, 6, 10, 2, n=10_000, seed=s)),
        c("dln/10-8-6-8-10-r2", lambda s: make_dln([10, 8, 6, 8, 10], 2, n=10_000, seed=s)),
        c("dln/20-15-10-15-20-r3", lambda s: make_dln([20, 15, 10, 15, 20], 3, n=10_000, seed=s)),
        c("dln/60-50-40-50-60-r5", lambda s: make_dln([60, 50, 40, 50, 60], 5, n=4_000, seed=s)),
    )


VALIDATION_CASES: tuple[ValidationCase, ...] = _cases()


@dataclass(frozen=True)
class ValidationResult(Rendered):
    """Per-case estimate against truth, and the suite's median and maximum relative errors."""

    cases: tuple[dict[str, Any], ...]
    median_relative_error: float
    max_relative_error: float
    seconds: float

    @property
    def valid(self) -> bool:
        """Every case's estimate passed all its own diagnostics: no case has warnings. (Whether
        the suite meets its accuracy targets is ``median_relative_error`` and
        ``max_relative_error``.)"""
        return not any(c.get("warnings") for c in self.cases)

    def _tables(self) -> list[Table]:
        heads = ["case", "d", "truth", "m", "estimate", "stderr", "rel. error", "step", "gamma"]
        rows = [
            [
                c["name"], c["n_params"], c["truth"], c["multiplicity"], c["estimate"], c["stderr"],
                c["relative_error"], c["step_size"], c["gamma"],
            ]
            for c in self.cases
        ]
        notes = [
            f"median relative error {self.median_relative_error:.3f}, "
            f"max {self.max_relative_error:.3f} ({self.seconds:.0f} s)"
        ]
        for c in self.cases:
            notes.extend(f"{c['name']}: {w}" for w in c.get("warnings", []))
        return [Table("LLC validation against known learning coefficients", heads, rows, notes)]


def _select(cases: Sequence[str] | None, fast: bool) -> list[ValidationCase]:
    """The cases named (in that order), else the cheap subset with ``fast``, else all."""
    known = {c.name: c for c in VALIDATION_CASES}
    if cases is None:
        return [c for c in VALIDATION_CASES if c.fast or not fast]
    bad = [c for c in cases if c not in known]
    if bad:
        raise ConfigError(
            f"unknown validation case {bad[0]!r}" + suggest(bad[0], known)
            + f"; known: {', '.join(known)}"
        )
    return [known[c] for c in cases]


def _run_case(
    case: ValidationCase, seed: int, config: SGLDConfig, calibration: CalibrationConfig
) -> dict[str, Any]:
    """Build the case at ``seed``, estimate its LLC calibrated, compare with the truth."""
    t0 = time.perf_counter()
    km = case.build(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res, _ = estimate_llc_calibrated(
            km.model, km.loss_fn, km.data, config, calibration=calibration, seed=seed
        )
    truth = float(km.truth.lambda_)
    rel = abs(res.llc - truth) / truth if math.isfinite(res.llc) else float("inf")
    return {
        "name": case.name,
        "family": km.truth.family,
        "n_params": km.n_params,
        "n": km.n,
        "truth": truth,
        "truth_fraction": str(km.truth.lambda_),
        "multiplicity": km.truth.multiplicity,
        "estimate": res.llc,
        "stderr": res.llc_stderr,
        "relative_error": rel,
        "step_size": res.config.step_size,
        "n_draws": res.config.n_draws,
        "gamma": res.gamma,
        "temperature": res.temperature,
        "rhat": res.rhat,
        "seconds": time.perf_counter() - t0,
        "warnings": list(dict.fromkeys([*res.warnings, *(str(w.message) for w in caught)])),
    }


def validate_llc(
    cases: Sequence[str] | None = None,
    *,
    fast: bool = False,
    config: SGLDConfig | None = None,
    seed: int = 0,
    target_rse: float | None = 0.05,
    calibration: CalibrationConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Run the known-lambda suite (all cases, the names given, or the cheap subset with ``fast``).

    Each case runs :func:`estimate_llc_calibrated`: :func:`calibrate_sgld` over step sizes with
    pilot chains (lengthened where the temperature is too noisy to judge), chains lengthened to
    a relative Monte Carlo error of about ``target_rse`` (at most 8x; ``None``: the configured
    length), then :func:`estimate_llc`, rerun at a smaller step if its own chains run hot.
    Case ``i`` (in the order run) is built and estimated with seed ``seed + i``; ``seed`` must
    be a non-negative integer. ``calibration`` replaces the pilots' settings (default:
    ``CalibrationConfig(target_rse=target_rse)``; a cheaper grid gives a quick, rougher check).
    """
    seed = check_seed(seed)
    chosen = _select(cases, fast)
    base = config or SGLDConfig()
    if calibration is None:
        calibration = CalibrationConfig(target_rse=target_rse)
    start = time.perf_counter()
    out: list[dict[str, Any]] = []
    for i, case in enumerate(chosen):
        row = _run_case(case, seed + i, base, calibration)
        out.append(row)
        if progress is not None:
            progress(
                f"{case.name}: truth {row['truth']:.4g}, estimate {row['estimate']:.4g} +- "
                f"{row['stderr']:.2g}, relative error {row['relative_error']:.3f} "
                f"({row['seconds']:.1f} s)"
            )
    errs = [float(c["relative_error"]) for c in out]
    return ValidationResult(
        tuple(out),
        float(statistics.median(errs)) if errs else float("nan"),
        float(max(errs)) if errs else float("nan"),
        time.perf_counter() - start,
    )
