"""Extrapolation intervals calibrated by backtests (issue 19): the error model against known
truth, no leakage from held-out runs, refusal, form choice, and coverage on simulated sweeps whose
true law bends beyond the fitted range."""

from __future__ import annotations

import numpy as np
import pytest
from scaling_synth import TRUTH

from occamlab.errors import ConfigError
from occamlab.scaling import (
    CalibratedExtrapolation,
    Chinchilla,
    CoupledChinchilla,
    Kaplan,
    LawForm,
    PowerLaw,
    calibrate_extrapolation,
    extrapolation_check,
    fit_chinchilla,
)
from occamlab.scaling._backtest import choose_cutoffs
from occamlab.scaling._error_model import backtest_weights, dpow, fit_error_model


def bent_sweep(seed: int, *, noise: float = 0.003, max_bend: float = 0.01) -> dict[str, np.ndarray]:
    """Two runs at each of 13 scales over 1e6..1e10 of ``y = 2 + 40 x'^-(0.3 - b ln x')``
    (``x' = x / 1e6``): a power law whose log-log slope flattens at a random rate ``b`` in
    ``[0, max_bend]``, so a saturating power law fitted below a scale over-predicts above it."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.geomspace(1e6, 1e10, 13), 2)
    u = np.log(x / 1e6)
    b = rng.uniform(0.0, max_bend)
    y = (2.0 + 40.0 * np.exp(-(0.3 - b * u) * u)) * np.exp(rng.normal(0.0, noise, len(x)))
    return {"x": x, "loss": y}


def coverage_study(n_reps: int, n_holdout: int = 2) -> tuple[float, float]:
    """Pooled coverage (old observation intervals, calibrated ones) of the held-out largest
    scales over ``n_reps`` simulated sweeps."""
    old, new = [], []
    for s in range(n_reps):
        ex = extrapolation_check(PowerLaw(), bent_sweep(s), by="x", n_holdout=n_holdout,
                                 calibrate=True)
        obs = np.array(ex.observed)
        old += list((np.array(ex.lower) <= obs) & (obs <= np.array(ex.upper)))
        new += list((np.array(ex.calibrated_lower) <= obs) & (obs <= np.array(ex.calibrated_upper)))
    return float(np.mean(old)), float(np.mean(new))


# --- the error model against known truth ----------------------------------------------------
def test_error_model_recovers_known_growth() -> None:
    rng = np.random.default_rng(1)
    n_bt = 6
    cutoff = np.repeat(np.arange(1.0, n_bt + 1), 200)
    d = rng.uniform(0.05, 2.0, len(cutoff))
    u2 = np.full(len(d), 0.01**2)
    k_true = 0.05
    e = rng.normal(0.0, np.sqrt(u2 + (k_true * d) ** 2))
    k, p = fit_error_model(e, u2, d, backtest_weights(cutoff), level=0.5)  # ML alone at level 0.5
    assert p == 1.0
    assert k == pytest.approx(k_true, rel=0.1)
    # errors within the noise alone: no growth
    k0, _ = fit_error_model(rng.normal(0.0, 0.01, len(d)), u2, d, backtest_weights(cutoff), 0.5)
    assert k0 < 0.005


def test_dpow_and_weights() -> None:
    np.testing.assert_array_equal(dpow(np.array([0.0, 2.0]), 0.0), [0.0, 1.0])  # none in range
    w = backtest_weights(np.array([1.0, 1.0, 2.0]))  # backtest j weighs j, shared by its pairs
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 2 / 3])
    np.testing.assert_allclose(backtest_weights(np.array([1.0, 1.0, 2.0]), recency=False),
                               [0.25, 0.25, 0.5])


def test_refuses_too_few_scales() -> None:
    x = np.repeat([1e6, 1e7, 1e8], 3)
    data = {"x": x, "loss": 2.0 + 40.0 * x**-0.3}
    with pytest.raises(ConfigError, match="too few scales to backtest: 3 distinct values of 'x'"):
        calibrate_extrapolation(PowerLaw(), data, by="x")
    with pytest.raises(ConfigError, match="too few scales"):
        choose_cutoffs(np.array([1.0, 2.0, 3.0, 4.0]), min_points=3, n_cutoffs=5,
                       min_train_fraction=0.3)
    with pytest.raises(ConfigError, match="level must be in"):
        calibrate_extrapolation(PowerLaw(), bent_sweep(0), by="x", level=1.5)


def test_exact_law_needs_no_widening_and_predict_inside_range() -> None:
    x = np.repeat(np.geomspace(1e6, 1e10, 9), 2)
    rng = np.random.default_rng(0)
    data = {"x": x, "loss": (2.0 + 40.0 * x**-0.3) * np.exp(rng.normal(0, 0.002, len(x)))}
    cal = calibrate_extrapolation(PowerLaw(), data, by="x")
    assert isinstance(cal, CalibratedExtrapolation) and cal.form == "power-law"
    assert cal.n_backtests == len(cal.cutoffs) >= 3
    assert cal.growth * 1.0**cal.power < 0.01  # under 1% extra log error a decade out
    # inside the fitted range the calibrated interval is the observation interval
    inside = cal.predict(scale=1e8, x=1e8)
    old = cal.fit.predict(x=1e8, kind="observation")
    np.testing.assert_allclose(inside.lower, old.lower, rtol=1e-9)
    np.testing.assert_allclose(inside.upper, old.upper, rtol=1e-9)
    far = cal.predict(scale=1e12, x=1e12)
    assert far.upper[0] - far.lower[0] >= cal.fit.predict(x=1e12, kind="observation").upper[0] \
        - cal.fit.predict(x=1e12, kind="observation").lower[0] - 1e-12
    assert "calibrated by" in far.method and "backtests" in str(cal)


# --- no leakage -----------------------------------------------------------------------------
def test_held_out_losses_do_not_move_their_predictions() -> None:
    data = bent_sweep(3)
    ex = extrapolation_check(PowerLaw(), data, by="x", n_holdout=2, calibrate=True)
    held = data["x"] >= np.unique(data["x"])[-2]
    changed = {"x": data["x"], "loss": np.where(held, data["loss"] * 1.5, data["loss"])}
    ex2 = extrapolation_check(PowerLaw(), changed, by="x", n_holdout=2, calibrate=True)
    assert ex2.calibrated_predicted == ex.calibrated_predicted
    assert ex2.calibrated_lower == ex.calibrated_lower
    assert ex2.calibrated_upper == ex.calibrated_upper
    assert ex2.calibration is not None and ex.calibration is not None
    assert ex2.calibration.growth == ex.calibration.growth
    assert ex2.observed != ex.observed  # the check itself sees the altered values
    assert ex.calibrated_coverage == pytest.approx(
        np.mean((np.array(ex.calibrated_lower) <= np.array(ex.observed))
                & (np.array(ex.observed) <= np.array(ex.calibrated_upper))))


def test_nested_coverage_uses_earlier_backtests_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cal = calibrate_extrapolation(PowerLaw(), bent_sweep(5), by="x")
    png = tmp_path / "backtests.png"
    cal.plot(str(png))
    assert png.stat().st_size > 10_000
    lo = np.array(cal.bt_lower)
    first = np.array(cal.bt_cutoff) == cal.cutoffs[0]
    assert np.all(np.isnan(lo[first])) and np.all(np.isfinite(lo[~first]))
    assert cal.n_evaluated == int((~first).sum())
    assert 0.0 <= cal.old_coverage <= cal.coverage <= 1.0


# --- form uncertainty -----------------------------------------------------------------------
def test_form_chosen_by_backtest_error() -> None:
    x = np.repeat(np.geomspace(1e6, 1e10, 9), 2)
    rng = np.random.default_rng(2)
    data = {"x": x, "loss": (2.0 + 40.0 * x**-0.3) * np.exp(rng.normal(0, 0.002, len(x)))}
    cal = calibrate_extrapolation(PowerLaw(saturating=False), data, by="x", forms=[PowerLaw()])
    assert cal.forms == ("pure-power-law", "power-law") and cal.form == "power-law"
    assert cal.form_rms_error[1] < cal.form_rms_error[0] / 3
    spread = cal.form_predictions(x=[1e11])
    assert set(spread) == {"pure-power-law", "power-law"}
    with pytest.raises(ConfigError, match="candidate forms must differ"):
        calibrate_extrapolation(PowerLaw(), data, by="x", forms=[PowerLaw()])


@pytest.mark.parametrize("form,theta", [(Kaplan(irreducible=True), [0.3, 20.0, 21.0, 0.08, 0.1]),
                                        (CoupledChinchilla(), [0.5, 6.0, 6.0, 0.34, 0.28, -0.05])],
                         ids=["kaplan-irreducible", "coupled-chinchilla"])
def test_new_forms_jacobian_and_values(form: LawForm, theta: list) -> None:
    N, D = np.geomspace(1e6, 1e10, 7), np.geomspace(1e8, 1e12, 7)
    prep = form.prepare({"N": N, "D": D})
    t = np.array([theta])
    val, J = form.value_jac(t, prep)
    np.testing.assert_allclose(J, LawForm.value_jac(form, t, prep)[1], rtol=1e-6, atol=1e-8)
    p = dict(zip(form.param_names, form.to_natural(np.array(theta)), strict=True))
    if isinstance(form, Kaplan):
        want = p["E"] + ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    else:
        want = p["E"] + p["A"] / N ** p["alpha"] + p["B"] * N ** p["gamma"] / D ** p["beta"]
    np.testing.assert_allclose(np.exp(val[0]), want, rtol=1e-12)


def test_fit_chinchilla_extrapolate_to() -> None:
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e10, 7), 4)
    D = np.tile(np.geomspace(1e8, 1e11, 4), 7) * (N / 1e7) ** 0.5
    L = Chinchilla().predict(TRUTH, N=N, D=D) * np.exp(rng.normal(0, 0.005, len(N)))
    rep = fit_chinchilla({"N": N, "D": D, "loss": L}, d="D", extrapolate_to=[1e23], forms=())
    assert rep.calibration is not None and rep.extrapolated is not None
    assert rep.calibration.by == "__C" and rep.calibration.form == "chinchilla"
    lo, v, hi = rep.extrapolated.lower[0], rep.extrapolated.value[0], rep.extrapolated.upper[0]
    assert lo < v < hi
    n, d = rep.extrapolated.inputs["N"][0], rep.extrapolated.inputs["D"][0]
    assert 6 * n * d == pytest.approx(1e23, rel=1e-9)
    truth = float(Chinchilla().predict(TRUTH, N=n, D=d)[0])
    assert lo <= truth <= hi and v == pytest.approx(truth, rel=0.02)
    assert "Calibrated extrapolation of the loss" in str(rep)
    with pytest.raises(ConfigError, match="extrapolate_to must be positive"):
        fit_chinchilla({"N": N, "D": D, "loss": L}, d="D", extrapolate_to=[-1.0], forms=())
    with pytest.raises(ConfigError, match="forms must be laws of"):
        fit_chinchilla({"N": N, "D": D, "loss": L}, d="D", extrapolate_to=[1e23], forms=["power-law"])


def test_small_grid_is_the_fit_options() -> None:  # starts reach the chosen form's refits
    x = np.repeat(np.geomspace(1e6, 1e10, 9), 2)
    data = {"x": x, "loss": 2.0 + 40.0 * x**-0.3}
    starts = [[0.7, 3.7, 0.3]]
    cal = calibrate_extrapolation(PowerLaw(), data, by="x", starts=starts)
    assert cal.fit.n_starts == 1


# --- coverage on simulated sweeps whose law bends beyond the fitted range --------------------
def test_coverage_cheap() -> None:
    old, new = coverage_study(4)
    assert old < 0.6  # the old observation intervals miss the bend
    assert new >= old + 0.25 and new >= 0.75


@pytest.mark.slow
def test_coverage_study_slow() -> None:
    old, new = coverage_study(200)
    print(f"simulated coverage over 200 sweeps: old {old:.3f}, calibrated {new:.3f}")
    assert abs(new - 0.95) <= 0.05, (old, new)
    assert old < 0.90, (old, new)


# --- multi-stage uncertainty ----------------------------------------------------------------
def test_loss_to_loss_joint_bootstrap_refits_every_stage() -> None:
    from occamlab.scaling import fit_loss_to_loss

    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e9, 5), 4)
    D = np.tile(np.geomspace(1e8, 1e10, 4), 5)
    X = Chinchilla().predict(TRUTH, N=N, D=D) * np.exp(rng.normal(0, 0.005, len(N)))
    Y = 2.2 + 1.3 * (X - 1.69) ** 0.9 * np.exp(rng.normal(0, 0.005, len(N)))
    data = {"N": N, "D": D, "x": X, "y": Y}
    starts = [[0.5, 6.0, 6.0, 0.34, 0.28]]
    res = fit_loss_to_loss(data, x="x", y="y", starts=starts, joint=12, seed=3)
    again = fit_loss_to_loss(data, x="x", y="y", starts=starts, joint=12, seed=3)
    assert res.joint_draws == again.joint_draws and res.joint_draws is not None
    d = np.array(res.joint_draws)
    assert d.shape[1] == 4 and len(d) >= 6
    assert np.std(d[:, 0]) > 0 and np.std(d[:, 1]) > 0  # E_x and E_y vary with the resample
    plain = fit_loss_to_loss(data, x="x", y="y", starts=starts)
    x_new = [2.0, 2.3]
    wide, narrow = res.predict(x_new), plain.predict(x_new)
    assert "joint bootstrap" in wide.method
    assert np.all(np.array(wide.upper) - np.array(wide.lower)
                  > np.array(narrow.upper) - np.array(narrow.lower))
    obs = res.predict(x_new, kind="observation")
    assert np.all(np.array(obs.upper) >= np.array(wide.upper))
    assert type(res).from_dict(res.to_dict()).joint_draws == res.joint_draws
    with pytest.raises(ConfigError, match="joint must be"):
        fit_loss_to_loss(data, x="x", y="y", starts=starts, joint=-1)


def test_transfer_carries_the_scratch_law_uncertainty_into_d_t() -> None:
    import pandas as pd

    from occamlab.scaling import fit_transfer

    rng = np.random.default_rng(0)
    E, B, beta_s, k, alpha, beta = 1.5, 300.0, 0.3, 50.0, 0.4, 0.3
    scratch, tuned = [], []
    for N in (1e5, 1e6, 1e7):
        Bn = B * (N / 1e6) ** -0.1
        for D in np.geomspace(1e5, 1e9, 8):
            scratch.append({"N": N, "D": D, "loss": (E + Bn * D**-beta_s) * np.exp(rng.normal(0, 0.003))})
        for DF in np.geomspace(1e4, 1e6, 5):
            DT = k * DF**alpha * N**beta
            tuned.append({"N": N, "D": DF, "loss": E + Bn * (DF + DT) ** -beta_s})
    res = fit_transfer(pd.DataFrame(scratch), pd.DataFrame(tuned))
    lo, hi, dt = (np.array(v) for v in (res.d_t_lower, res.d_t_upper, res.d_t))
    ok = np.isfinite(lo) & np.isfinite(hi)
    assert ok.sum() >= 10
    assert np.all(lo[ok] < dt[ok]) and np.all(dt[ok] < hi[ok])  # a real spread around D_T
    assert np.median(hi[ok] / lo[ok]) > 1.01  # about 3% here (0.3% noise on the scratch runs)
    true_dt = np.array([k * t["D"] ** alpha * t["N"] ** beta for t in tuned])
    assert np.mean((lo[ok] <= true_dt[ok]) & (true_dt[ok] <= hi[ok])) >= 0.8
    assert "D_T 95% lower" in str(res)
