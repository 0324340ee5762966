"""Calibration helper and the known-lambda validation suite (cheap subset fast, full suite slow)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from occamlab.errors import ConfigError
from occamlab.slt import (
    VALIDATION_CASES,
    CalibrationConfig,
    CalibrationResult,
    SGLDConfig,
    ValidationResult,
    calibrate_sgld,
    estimate_llc_calibrated,
    make_linear_regression,
    make_normal_crossing,
    validate_llc,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")


def test_calibration_rejects_hot_steps_and_picks_a_good_one(result_contract) -> None:  # type: ignore[no-untyped-def]
    km = make_linear_regression(5, 4, n=5000, seed=0)
    grid = CalibrationConfig(step_sizes=[0.1, 0.03, 0.01, 0.003], pilot_draws=150,
                             pilot_burnin=150)
    assert grid.step_sizes == (0.1, 0.03, 0.01, 0.003)  # a list is kept as a tuple
    cal = calibrate_sgld(km.model, km.loss_fn, km.data, SGLDConfig(gamma=1.0, step_size=0.1),
                         calibration=grid, seed=0)
    rows = {r["step_size"]: r for r in cal.rows}
    # eps = 0.1 is far too hot for curvature n beta = 587 (T well above 1, or divergence)
    hot = rows[0.1]
    assert hot["n_diverged"] > 0 or hot["temperature"] > 1.1
    assert cal.recommended.step_size in (0.01, 0.003)
    assert cal.recommended.gamma == 1.0
    assert sum(r["chosen"] for r in cal.rows) == 1
    result_contract(cal)
    assert CalibrationResult.from_dict(json.loads(json.dumps(cal.to_dict()))).recommended == cal.recommended
    assert cal.valid == (not cal.notes)
    with pytest.raises(ConfigError, match="step_sizes"):
        CalibrationConfig(step_sizes=[-1.0])
    with pytest.raises(ConfigError, match="step_sizes"):
        CalibrationConfig(step_sizes=[])
    with pytest.raises(ConfigError, match="step_sizes"):
        CalibrationConfig(gammas=[-1.0])
    with pytest.raises(ConfigError, match="pilot_draws"):
        CalibrationConfig(pilot_draws=0)
    with pytest.raises(ConfigError, match="tolerance"):
        CalibrationConfig(tolerance=1.0)


def test_suite_has_twelve_cases_across_four_families() -> None:
    fams = {c.name.split("/")[0] for c in VALIDATION_CASES}
    assert fams == {"regular", "normal_crossing", "rrr", "dln"}
    assert len(VALIDATION_CASES) >= 12
    sizes = [c.build(0).n_params for c in VALIDATION_CASES if c.name.startswith("dln")]
    assert max(sizes) >= 9000  # up to about 1e4 parameters


def test_cheap_validation_subset(result_contract) -> None:  # type: ignore[no-untyped-def]
    res = validate_llc(["regular/linreg-5x4", "normal_crossing/w^4"], seed=0)
    assert len(res.cases) == 2
    for c in res.cases:
        assert c["relative_error"] <= 0.25, c
        assert c["truth"] in (10.0, 0.25)
    assert res.median_relative_error <= 0.25
    d = res.to_dict()
    for key in ("name", "family", "n_params", "truth", "estimate", "stderr", "relative_error"):
        assert key in d["cases"][0]
    assert {"median_relative_error", "max_relative_error"} <= set(d)
    result_contract(res)
    assert ValidationResult.from_dict(d).max_relative_error == res.max_relative_error
    with pytest.raises(ConfigError, match="did you mean"):
        validate_llc(["regular/linreg-5x5"])


@pytest.mark.slow
def test_full_validation_suite_meets_targets() -> None:
    res = validate_llc(seed=0)
    assert len(res.cases) >= 12
    assert res.median_relative_error <= 0.10
    assert res.max_relative_error <= 0.25
    assert all(math.isfinite(c["estimate"]) for c in res.cases)


def test_calibration_lengthens_chains_for_a_small_coefficient() -> None:
    """lambda = 1/4: the per-draw spread of n beta L is about sqrt(lambda), so 5% needs long chains."""
    from occamlab.slt import make_normal_crossing

    km = make_normal_crossing([2], n=20_000, seed=0)
    base = SGLDConfig(n_draws=100, n_burnin=100)
    pilots = CalibrationConfig(step_sizes=[0.03], pilot_draws=100, pilot_burnin=100)
    cal = calibrate_sgld(km.model, km.loss_fn, km.data, base,
                         calibration=replace(pilots, target_rse=0.05), seed=0)
    row = next(r for r in cal.rows if r["chosen"])
    # the pilot's standard error, scaled from its length to the estimator's (100 draws)
    factor = (row["llc_stderr"] / (0.05 * abs(row["llc"]))) ** 2 * row["pilot_draws"] / 100
    assert factor > 1
    assert cal.recommended.n_draws == math.ceil(100 * min(factor, 8.0))
    assert cal.recommended.step_size == 0.03 and cal.recommended.n_burnin == 100
    keep = calibrate_sgld(km.model, km.loss_fn, km.data, base, calibration=pilots, seed=0)
    assert keep.recommended.n_draws == 100  # default: off
    loose = calibrate_sgld(km.model, km.loss_fn, km.data, base,
                           calibration=replace(pilots, target_rse=10.0), seed=0)
    assert loose.recommended.n_draws == 100  # already precise enough: never shortened
    with pytest.raises(ConfigError, match="target_rse"):
        CalibrationConfig(target_rse=0.0)


def test_pilots_are_lengthened_while_the_temperature_is_too_noisy_to_judge() -> None:
    # one parameter: 100 draws give the temperature a standard error far above 0.05
    km = make_normal_crossing([1], n=20_000, seed=0)
    pilots = CalibrationConfig(step_sizes=[0.003], pilot_draws=100, pilot_burnin=100)
    cal = calibrate_sgld(km.model, km.loss_fn, km.data, calibration=pilots, seed=0)
    (row,) = cal.rows
    assert 100 < row["pilot_draws"] <= 800  # lengthened, at most 8x
    assert row["temperature_stderr"] < 0.1
    same = calibrate_sgld(km.model, km.loss_fn, km.data,
                          calibration=replace(pilots, temperature_se=10.0), seed=0)
    assert same.rows[0]["pilot_draws"] == 100
    with pytest.raises(ConfigError, match="temperature_se"):
        CalibrationConfig(temperature_se=0.0)


def test_calibrated_estimate_steps_down_when_its_own_chains_run_hot() -> None:
    # a one-point step grid forces the pilot onto eps = 0.03, hot for curvature n beta = 587
    km = make_linear_regression(5, 4, n=5000, seed=0)
    base = SGLDConfig(gamma=1.0, n_draws=200, n_burnin=200)
    pilots = CalibrationConfig(step_sizes=[0.03], pilot_draws=200, pilot_burnin=200)
    res, cal = estimate_llc_calibrated(km.model, km.loss_fn, km.data, base, calibration=pilots,
                                       seed=0)
    assert cal.recommended.step_size == 0.03
    downs = [w for w in res.warnings if "ran hot" in w]
    assert downs, res.warnings
    assert res.config.step_size == pytest.approx(0.03 / 1.8 ** len(downs))
    assert res.temperature <= 1 + max(0.05, 2 * res.temperature_stderr)
    assert abs(res.llc - 10.0) / 10.0 < 0.15  # truth d/2 = 10
    assert not res.valid  # the reruns are listed in its warnings
    stuck, _ = estimate_llc_calibrated(km.model, km.loss_fn, km.data, base, calibration=pilots,
                                       max_step_downs=0, seed=0)
    assert stuck.config.step_size == 0.03
    assert any("every run was hot" in w for w in stuck.warnings)
    with pytest.raises(ConfigError, match="final_tolerance"):
        estimate_llc_calibrated(km.model, km.loss_fn, km.data, base, calibration=pilots,
                                final_tolerance=1.5, seed=0)


def test_calibrated_estimate_pins_n_beta_to_the_estimates_n() -> None:
    # n (what L_n averages over) differs from the rows of data, as for token windows: the pilots
    # must sample at the estimate's n beta (and the gamma that follows from it)
    from occamlab.slt import default_nbeta

    km = make_linear_regression(5, 4, n=2000, seed=0)
    pilots = CalibrationConfig(step_sizes=[0.001], pilot_draws=50, pilot_burnin=50)
    res, cal = estimate_llc_calibrated(km.model, km.loss_fn, km.data,
                                       SGLDConfig(n_draws=50, n_burnin=50), n=50_000,
                                       calibration=pilots, seed=0)
    assert res.nbeta == pytest.approx(default_nbeta(50_000))
    assert cal.recommended.nbeta == pytest.approx(default_nbeta(50_000))
    assert all(r["gamma"] == pytest.approx(res.gamma) for r in cal.rows)


def test_validation_result_is_valid_when_no_case_has_warnings() -> None:
    case = {"name": "a", "n_params": 1, "truth": 1.0, "multiplicity": 1, "estimate": 1.0,
            "stderr": 0.1, "relative_error": 0.0, "step_size": 0.01, "gamma": 1.0}
    ok = ValidationResult(({**case, "warnings": []},), 0.0, 0.0, 1.0)
    hot = ValidationResult(({**case, "warnings": []}, {**case, "warnings": ["hot"]}), 0.0, 0.0, 1.0)
    assert ok.valid and not hot.valid
    assert "valid" not in ok.to_dict()
