"""fit_transfer: D_T against a synthetic case with a known answer, ossified runs, the bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from occamlab.errors import ConfigError
from occamlab.scaling import effective_data_transferred, fit_transfer

E, B, BETA_S = 1.2, 40.0, 0.35  # from-scratch L(D) = E + B_N D^-beta_s
K, ALPHA, BETA = 30.0, 0.3, 0.4  # D_T = k D_F^alpha N^beta
SIZES = (1e3, 3e3, 1e4, 3e4)
LADDER = np.geomspace(250, 64_000, 5)
D_F = (250.0, 2_500.0, 25_000.0)


def _b(n: float) -> float:
    return B * (n / 1e3) ** -0.1  # bigger models learn from less data


def _synthetic(noise: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    scratch, tuned = [], []
    for n in SIZES:
        for d in LADDER:
            scratch.append({"N": n, "D": d, "loss": (E + _b(n) * d**-BETA_S)
                            * np.exp(rng.normal(0, noise))})
        for f in D_F:
            d_t = K * f**ALPHA * n**BETA
            tuned.append({"N": n, "D": f, "loss": (E + _b(n) * (f + d_t) ** -BETA_S)
                          * np.exp(rng.normal(0, noise))})
    return pd.DataFrame(scratch), pd.DataFrame(tuned)


def test_d_t_is_the_known_answer_on_exact_data() -> None:
    scratch, tuned = _synthetic()
    res = fit_transfer(scratch, tuned)
    want = np.array([K * f**ALPHA * n**BETA for n in SIZES for f in D_F])
    np.testing.assert_allclose(res.d_t, want, rtol=1e-5)
    np.testing.assert_allclose(res.d_e, want + np.tile(D_F, len(SIZES)), rtol=1e-5)
    np.testing.assert_allclose(res.fraction, want / (want + np.tile(D_F, len(SIZES))), rtol=1e-5)
    assert res.law is not None and res.valid
    assert res.law.params["alpha"] == pytest.approx(ALPHA, abs=1e-5)
    assert res.law.params["beta"] == pytest.approx(BETA, abs=1e-5)
    # the inversion itself: D_E of a loss on the curve is the D it came from
    fit = res.scratch["1000"]
    loss = E + _b(1e3) * 5_000.0**-BETA_S
    assert float(effective_data_transferred(fit, [loss], [1_000.0])[0]) == pytest.approx(4_000.0,
                                                                                        rel=1e-5)


def test_ossified_runs_are_kept_reported_and_left_out_of_the_law() -> None:
    scratch, tuned = _synthetic()
    worse = tuned.copy()
    # fine-tuning worse than scratch at the same D_F (negative D_T), and below the asymptote
    at = E + _b(3e4) * 25_000.0**-BETA_S
    worse.loc[(worse.N == 3e4) & (worse.D == 25_000.0), "loss"] = at * 1.05
    worse.loc[(worse.N == 1e4) & (worse.D == 25_000.0), "loss"] = E * 0.99
    res = fit_transfer(scratch, worse, bootstrap=50)
    assert len(res.d_t) == len(worse)  # shown, not dropped
    i = int(np.flatnonzero((np.array(res.n) == 3e4) & (np.array(res.d_f) == 25_000.0))[0])
    j = int(np.flatnonzero((np.array(res.n) == 1e4) & (np.array(res.d_f) == 25_000.0))[0])
    assert res.d_t[i] < 0 and not res.used[i] and res.fraction[i] < 0
    assert res.d_t[j] == float("inf") and not res.used[j]
    assert sum(res.used) == len(worse) - 2
    assert any("left out of the law" in w for w in res.warnings) and not res.valid
    assert res.law is not None  # the other runs still give the exact law
    assert res.law.params["alpha"] == pytest.approx(ALPHA, abs=1e-4)


def test_bootstrap_intervals_cover_the_truth_and_are_deterministic() -> None:
    scratch, tuned = _synthetic(noise=0.003, seed=1)
    a = fit_transfer(scratch, tuned, bootstrap=200, seed=3)
    b = fit_transfer(scratch, tuned, bootstrap=200, seed=3)
    assert a.law is not None and b.law is not None
    assert a.law.ci == b.law.ci
    assert a.law.interval_method.startswith("bootstrap")
    for name, truth in (("alpha", ALPHA), ("beta", BETA)):
        lo, hi = a.law.ci[name]
        assert lo < truth < hi, (name, lo, hi)
        assert hi - lo < 0.2
    assert len(a.law.bootstrap or ()) == 200


def test_two_sources_with_the_same_scratch_runs_share_the_scratch_resamples() -> None:
    """Same scratch data and seed: the scratch draws are shared, so the row-by-row difference of
    two identical sources is exactly 0 (a paired bootstrap of a difference)."""
    scratch, tuned = _synthetic(noise=0.003, seed=2)
    a = fit_transfer(scratch, tuned, bootstrap=40, seed=5)
    b = fit_transfer(scratch, tuned.copy(), bootstrap=40, seed=5)
    da, db = np.array(a.law.bootstrap), np.array(b.law.bootstrap)  # type: ignore[union-attr]
    np.testing.assert_array_equal(da, db)
    c = fit_transfer(scratch, tuned, bootstrap=40, seed=6)
    assert not np.array_equal(da, np.array(c.law.bootstrap))  # type: ignore[union-attr]


def test_one_model_size_fixes_beta_and_bad_options_are_errors() -> None:
    scratch, tuned = _synthetic(noise=0.002)
    one = tuned[tuned.N == 1e3]
    more = pd.concat([one, one.assign(D=one.D * 2, loss=one.loss * 0.99)])
    res = fit_transfer(scratch, more, bootstrap=30)
    assert res.law is not None and res.law.params["beta"] == 0.0
    assert res.law.ci["beta"] == (0.0, 0.0)
    assert any("beta cannot be identified" in w for w in res.warnings)
    with pytest.raises(ConfigError, match="bootstrap"):
        fit_transfer(scratch, tuned, bootstrap=-1)
    with pytest.raises(ConfigError, match="seed"):
        fit_transfer(scratch, tuned, seed=-2)
