"""The mdl-slt experiment: the volume law against closed forms, the n_q search against a scan on a
transformer, the fit of the relation on synthetic data, and the section of the tiny demo."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from occamlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")


def _dynesty() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("dynesty")


# ---- ground truth: fits and code lengths on exact volume curves ----------------------------
@pytest.mark.parametrize("lam,m", [(0.25, 1), (0.5, 2), (1.5, 1), (2.0, 3)])
def test_fit_volume_law_recovers_exact_curves(lam: float, m: int) -> None:
    from occamlab.slt import fit_volume_law

    eps = np.logspace(-10, -3, 29)
    log_v = -1.3 + lam * np.log(eps) + (m - 1) * np.log(-np.log(eps))
    got = fit_volume_law(eps, log_v, m)
    assert got[0] == pytest.approx(lam, abs=1e-10) and got[2] == pytest.approx(0, abs=1e-18)
    free = fit_volume_law(eps, log_v)
    assert free[0] == pytest.approx(lam, abs=1e-8) and free[1] == pytest.approx(m, abs=1e-7)


def test_code_and_free_energy_of_an_exact_power_law() -> None:
    """V(eps) = c eps^lam on a dense grid: R_n = lam log(n / lam) + lam - log c (the minimum of
    -log V + n eps), and F_n = lam log n - log(c Gamma(lam + 1)) (a Laplace transform)."""
    from occamlab.slt import free_energy, two_part_redundancy

    lam, c = 1.5, 0.7
    k = np.logspace(0, -14, 40_000)  # descending, as dead points
    logvol = np.log(c) + lam * np.log(k)
    n = np.array([1e3, 1e5, 1e7])
    r = two_part_redundancy(k, logvol, n)
    assert r == pytest.approx(lam * np.log(n / lam) + lam - np.log(c), abs=1e-5)
    f = free_energy(k, logvol, n)
    assert f == pytest.approx(lam * np.log(n) - np.log(c * math.gamma(lam + 1)), abs=2e-3)


@pytest.mark.parametrize("d", [2, 3])
def test_nested_sampling_volume_of_a_quadratic_loss_matches_the_ball(d: int) -> None:
    """K(w) = |w - w0|^2 / 2 under a uniform prior on [-1, 1]^d: while the ball of radius
    sqrt(2 eps) stays in the box, V(eps) = pi^(d/2) (2 eps)^(d/2) / (Gamma(d/2 + 1) 2^d)."""
    _dynesty()
    from occamlab.slt import measure_volume, regular_lambda

    w0 = np.full(d, 0.2)

    def k(w: np.ndarray) -> float:
        return 0.5 * float(np.dot(w - w0, w - w0))

    v = measure_volume(k, d, eps_min=1e-7, fit_range=(1e-6, 1e-2), n_live=40,
                       n_replicates=20, truth=regular_lambda(d), seed=1)
    eps = np.asarray(v.eps)
    exact = (d / 2 * np.log(np.pi) + d / 2 * np.log(2 * eps) - math.lgamma(d / 2 + 1)
             - d * np.log(2))
    inside = eps <= 0.8**2 / 2  # the ball is in the box
    lo, hi = np.asarray(v.log_volume_lo)[inside], np.asarray(v.log_volume_hi)[inside]
    covered = (lo - 0.05 <= exact[inside]) & (exact[inside] <= hi + 0.05)
    assert covered.mean() >= 0.9, (exact[inside] - np.asarray(v.log_volume)[inside])
    assert v.lambda_ci[0] <= d / 2 <= v.lambda_ci[1]
    assert abs(v.lambda_ - d / 2) / (d / 2) < 0.1
    assert v.truth_lambda == d / 2 and v.relative_error is not None


def test_merged_runs_give_replicates_around_their_own_estimate() -> None:
    """n_runs > 1: the bands come from replicates of each run merged, and they cover the exact
    V(eps) of w1 w2^2 under the uniform prior, 2 t^(1/2) - t with t = sqrt(2 eps). (Resampling
    the merged run instead gave replicates of lambda near 1 for this lambda = 0.25.)"""
    _dynesty()
    from occamlab.slt import measure_volume, volume_case

    c = volume_case("normal_crossing/w1 w2^2")
    v = measure_volume(c.k, 2, eps_min=1e-7, fit_range=(1e-6, 1e-2), n_live=40, n_runs=2,
                       n_replicates=30, truth=c.truth, seed=2)
    assert v.n_runs == 2 and v.n_live == 40
    assert v.lambda_ci[0] <= v.lambda_ <= v.lambda_ci[1]
    assert v.lambda_ci[1] - v.lambda_ci[0] < 0.25  # replicates of about 0.25, not of 1
    eps = np.asarray(v.eps)
    t = np.sqrt(2 * eps)
    exact = np.log(2 * np.sqrt(t) - t)
    lo, hi = np.asarray(v.log_volume_lo), np.asarray(v.log_volume_hi)
    covered = (lo - 0.05 <= exact) & (exact <= hi + 0.05)
    assert covered.mean() >= 0.9, exact - np.asarray(v.log_volume)


def test_volume_law_is_deterministic_and_checks_its_input() -> None:
    _dynesty()
    from occamlab.slt import measure_volume, volume_case

    c = volume_case("normal_crossing/w1 w2^2")
    a = measure_volume(c.k, 2, eps_min=1e-6, fit_range=(1e-5, 1e-3), n_live=15,
                       n_replicates=10, seed=3)
    b = measure_volume(c.k, 2, eps_min=1e-6, fit_range=(1e-5, 1e-3), n_live=15,
                       n_replicates=10, seed=3)
    assert a.log_volume == b.log_volume and a.lambda_ == b.lambda_
    with pytest.raises(ConfigError, match="n_live"):
        measure_volume(c.k, 2, n_live=3)
    with pytest.raises(ConfigError, match="fit_range"):
        measure_volume(c.k, 2, eps_min=1e-6, fit_range=(1e-8, 1e-3))
    with pytest.raises(ConfigError, match="unknown volume-law case.*known"):
        volume_case("regular/linreg-9x9")


def test_volume_cases_have_their_exact_coefficients() -> None:
    from occamlab.slt import VOLUME_CASES

    truth = {c.name: (float(c.truth.lambda_), c.truth.multiplicity, c.n_params)
             for c in VOLUME_CASES.values()}
    assert truth == {"regular/linreg-2x1": (1.0, 1, 2), "normal_crossing/w1 w2^2": (0.25, 1, 2),
                     "normal_crossing/w1 w2": (0.5, 2, 2), "rrr/2-1-2-r1": (1.5, 1, 4),
                     "rrr/2-2-2-r1": (2.0, 2, 8)}
    for c in VOLUME_CASES.values():  # K vanishes on the true set and is positive off it
        km = c.build(0)
        assert km.truth.lambda_ == c.truth.lambda_ and km.n_params == c.n_params
        w = np.random.default_rng(0).uniform(-c.halfwidth, c.halfwidth, c.n_params)
        assert c.k(w) > 0
    rrr = VOLUME_CASES["rrr/2-2-2-r1"]
    on_truth = np.array([1.0, 0, 0, 0, 1.0, 0, 0, 0])  # A = e1 e1^T, B = e1 e1^T
    assert rrr.k(on_truth) == 0.0


# ---- n_q by bisection against a scan of every level, on a small transformer ------------------
def test_n_q_search_matches_a_brute_force_scan_on_a_transformer() -> None:
    from occamlab.slt import CompressionSpec, compress_model, critical_compression, evaluate_loss
    from occamlab.train import ModelConfig, TrainConfig, lm_windows, token_loss, train

    torch.set_num_threads(1)
    tokens = np.random.default_rng(0).integers(0, 4, 20_000)
    cfg = TrainConfig(model=ModelConfig(vocab_size=4, context=16, d_model=16, n_layer=1,
                                        n_head=2), steps=30, batch_size=8, eval_every=30,
                      eval_tokens=256, warmup_steps=5, lr=1e-2, threads=1)
    model, _ = train(cfg, tokens=tokens)
    data = lm_windows(tokens, context=16, vocab_size=4, max_tokens=1024)
    base = evaluate_loss(model, token_loss, data)
    for scheme, top in (("rtn-channel", 16), ("svd", 16)):
        scan = {lv: evaluate_loss(compress_model(model, CompressionSpec(scheme, lv)), token_loss,
                                  data) - base for lv in range(1, top + 1)}
        for eps in (0.002, 0.02):
            res = critical_compression(model, token_loss, data, scheme=scheme, epsilon=eps)
            passing = [lv for lv, inc in scan.items() if inc <= eps]
            monotone = all(lv in passing for lv in range(min(passing), top + 1))
            assert res.n_q is not None and scan[res.n_q] <= eps
            if monotone:  # bisection finds the scan's threshold exactly
                assert res.n_q == min(passing), (scheme, eps, scan)
            else:  # it finds a passing level whose neighbour below fails, and says so if it saw
                assert res.n_q == 1 or scan[res.n_q - 1] > eps


# ---- the relation ----------------------------------------------------------------------------
def test_fit_relation_recovers_a_known_line_with_intervals() -> None:
    from occamlab.experiments._mdl_slt_analysis import fit_relation

    rng = np.random.default_rng(0)
    x = rng.uniform(10, 100, 40)
    y = 3.0 + 0.05 * x + rng.normal(0, 0.2, 40)
    f = fit_relation(x, y, bootstrap=100, seed=1)
    assert f["slope"]["ci"][0] <= 0.05 <= f["slope"]["ci"][1]
    assert f["intercept"]["ci"][0] <= 3.0 <= f["intercept"]["ci"][1]
    assert f["pearson"]["value"] > 0.9 and f["spearman"]["value"] > 0.9
    assert f["n_models"] == 40
    # groups resample together: two rows per model
    g = fit_relation(np.repeat(x, 2), np.repeat(y, 2), np.repeat(np.arange(40), 2),
                     bootstrap=50, seed=1)
    assert g["n_models"] == 40 and g["n_points"] == 80
    assert g["slope"]["value"] == pytest.approx(f["slope"]["value"])
    none = fit_relation([1.0, 2.0], [3.0, 4.0], bootstrap=20)  # too few: no numbers, no crash
    assert none["pearson"]["value"] is None and none["pearson"]["ci"] == [None, None]


def test_config_checks_name_the_field() -> None:
    from occamlab.experiments import get_experiment

    exp = get_experiment("mdl-slt")
    with pytest.raises(ConfigError, match="snapshots"):
        exp.make_config({"steps": 100, "snapshots": [200]})
    with pytest.raises(ConfigError, match="schemes"):
        exp.make_config({"schemes": ["rtn-bogus"]})
    with pytest.raises(ConfigError, match="unknown volume-law case"):
        get_experiment("volume-law").make_config({"case": "nope"})


def test_plan_sizes_meet_the_issue() -> None:
    from occamlab.experiments import get_experiment
    from occamlab.experiments.mdl_slt import plan

    for size, least in (("quick", 12), ("full", 40)):
        cfg = get_experiment("mdl-slt").preset(size)
        stages = plan(cfg)
        models = {(r.point["task"], r.point["N"], r.point["step"]) for r in stages[1].runs
                  if r.experiment == "llc" and r.point["step"] in cfg.snapshots
                  and r.point["role"] == "model"}
        assert len(models) >= least
        assert {r.point["task"] for r in stages[0].runs if r.experiment == "train"} == \
            {"text", "process"}
        assert len(cfg.schemes) >= 2 and len(cfg.epsilons) >= 2
        ids = [r.id for s in stages for r in s.runs]
        assert len(ids) == len(set(ids))


# ---- the section of the tiny demo -------------------------------------------------------------
def test_tiny_demo_section_reads_its_numbers_from_the_results(tiny_demo: Any) -> None:
    out, _ = tiny_demo
    entry = json.loads((out / "results.json").read_text())["mdl-slt"]
    assert entry["status"] in ("ok", "flagged"), entry.get("error")
    res = entry["results"]
    assert res["n_models"] == 4 and len(res["models"]) == 4
    assert {e["model"] for e in res["excluded"]} <= {m["name"] for m in res["models"]}
    assert res["n_kept"] + len(res["excluded"]) == res["n_models"]
    assert all(set(f) >= {"slope", "intercept", "pearson", "spearman", "verdict"}
               for f in res["fits"])
    assert [v["case"] for v in res["volume"]] == ["regular/linreg-2x1",
                                                  "normal_crossing/w1 w2^2"]
    for v in res["volume"]:
        assert v["decades"] >= 8 and v["lambda"]["value"] > 0
    assert [p["step"] for p in res["trajectory"]["points"]] == [10, 20, 40]
    page = (out / "index.html").read_text()
    assert "MDL meets SLT" in page and entry["headline"].split(":")[0] in page
    v0 = res["volume"][0]
    from occamlab.experiments._numbers import fmt_ci

    assert fmt_ci(v0["lambda"]) in page  # the page prints the results' numbers


def test_a_missed_volume_law_says_why_from_what_was_measured() -> None:
    from occamlab.experiments._mdl_slt_page import _miss_reason

    base = {"truth_m": 1}
    assert "not noise" in _miss_reason({**base, "m": 3, "m_identified": True})
    assert "more live points" in _miss_reason({**base, "m": 2, "m_identified": False})
    assert "statistical" in _miss_reason({**base, "m": 1, "m_identified": True})
