"""The transfer suite experiment: ground truth first (D_T of a synthetic case with a known answer,
ossified runs, the process family's exact divergences), then the data and evaluation runs, bad
input, and the tiny demo's section."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from occamlab.errors import ConfigError, OccamError
from occamlab.experiments import transfer
from occamlab.experiments._transfer_analysis import _family_truth, _main, behind_at, model_key
from occamlab.experiments.transfer import Config, ProcessFamily
from occamlab.experiments.transfer_data import (
    bayes_loss,
    markov_family,
    sample_markov,
    val_fraction,
)

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")

K, ALPHA, BETA = 20.0, 0.35, 0.45  # the synthetic law D_T = k D_F^alpha N^beta
E, B, BETA_S = 1.0, 25.0, 0.4  # each size's from-scratch curve E + B_N D^-beta_s


def _curve(n: float, d: Any) -> Any:
    return E + B * (n / 1e3) ** -0.15 * np.asarray(d, float) ** -BETA_S


def _frames(config: Config, *, ossify: bool = False) -> dict[str, Any]:
    """What _frames builds from stored runs, for a synthetic law (no training)."""
    scratch, tuned = [], []
    for m in config.models:
        n = float(transfer.non_embedding(m))
        for d in config.scratch_sizes:
            scratch.append({"dist": "target", "model": model_key(m), "N": n, "D": float(d),
                            "loss": float(_curve(n, d))})
        for i, src in enumerate(config.sources):
            for f in config.finetune_sizes:
                d_t = K * (1 + i) * f**ALPHA * n**BETA  # the second source transfers twice as much
                tuned.append({"dist": "target", "model": model_key(m), "N": n, "D": float(f),
                              "source": src, "mode": "full", "rank": None, "shift": None,
                              "loss": float(_curve(n, f + d_t))})
    if ossify:  # fine-tuning worse than scratch at the same data: D_T < 0
        tuned[0]["loss"] = float(_curve(tuned[0]["N"], tuned[0]["D"])) + 0.05
    return {"scratch": pd.DataFrame(scratch), "finetune": pd.DataFrame(tuned),
            "eval": pd.DataFrame(), "pretrain": pd.DataFrame()}


def test_d_t_of_a_synthetic_law_is_the_known_answer_and_beta_difference_is_zero() -> None:
    config = Config(bootstrap=60)
    out, objs = _main(config, _frames(config))
    for i, src in enumerate(config.sources):
        e = out["sources"][src]
        assert e["n_used"] == e["n_runs"] == len(config.models) * len(config.finetune_sizes)
        for p in e["points"]:
            want = K * (1 + i) * p["D_F"] ** ALPHA * p["N"] ** BETA
            assert p["D_T"] == pytest.approx(want, rel=1e-4)
            assert p["D_E"] == pytest.approx(want + p["D_F"], rel=1e-4)
            assert p["status"] == "transfer"
            # D_E past the largest from-scratch D is read off the law's extrapolation: marked
            assert p["extrapolated"] == (p["D_E"] > max(config.scratch_sizes))
        assert e["largest_scratch_d"] == max(config.scratch_sizes)
        assert 0 < e["n_extrapolated"] < e["n_runs"]  # both kinds occur in this synthetic law
        assert e["n_extrapolated"] == sum(p["extrapolated"] for p in e["points"])
        assert e["alpha"]["value"] == pytest.approx(ALPHA, abs=1e-4)
        assert e["beta"]["value"] == pytest.approx(BETA, abs=1e-4)
        assert e["k"]["value"] == pytest.approx(K * (1 + i), rel=1e-3)
    # same beta from both sources; the paired difference and its interval are ~0
    d = out["beta_difference"]
    assert d["value"] == pytest.approx(0.0, abs=1e-4)
    assert d["ci"][0] <= 0 <= d["ci"][1] and d["ci"][1] - d["ci"][0] < 1e-3


def test_ossified_runs_are_shown_with_their_status_and_left_out_of_the_fit() -> None:
    config = Config(bootstrap=0)
    out, _ = _main(config, _frames(config, ossify=True))
    e = out["sources"][config.sources[0]]
    bad = [p for p in e["points"] if p["status"] != "transfer"]
    assert len(bad) == 1 and bad[0]["status"].startswith("ossified") and bad[0]["D_T"] < 0
    assert not bad[0]["in_fit"] and e["n_ossified"] == 1 and e["n_runs"] == len(e["points"])
    assert e["n_used"] == e["n_runs"] - 1
    assert any("left out of the law" in w for w in e["warnings"])
    assert e["alpha"]["value"] == pytest.approx(ALPHA, abs=1e-3)  # the rest still give the law


def test_behind_at_interpolates_in_log_d_f() -> None:
    d_f = [100.0, 1000.0, 10000.0]
    assert behind_at(d_f, [0.0, 0.005, 0.02], 0.01) == (pytest.approx(1000 * 10 ** (1 / 3)),
                                                        "within")
    assert behind_at(d_f, [0.02, 0.03, 0.04], 0.01) == (100.0, "from the start")
    assert behind_at(d_f, [0.0, 0.001, 0.002], 0.01) == (None, "never")


def _kl_nats(P: np.ndarray, Q: np.ndarray) -> float:
    """KL rate of two first-order chains from its formula: sum_i pi_i sum_j P_ij ln(P_ij/Q_ij)."""
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    return float(np.sum(pi[:, None] * P * np.log(P / Q)))


def test_process_family_divergences_and_entropy_rate_against_exact_formulas() -> None:
    config = Config(process=ProcessFamily(shifts=(0.1, 0.4, 0.7, 1.0)))
    truth, kls = _family_truth(config)
    p = config.process
    P = markov_family(p.symbols, p.scale, p.family_seed, p.far_seed, 0.0).emission_probabilities
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    assert truth["h_nats"] == pytest.approx(float(-np.sum(pi[:, None] * P * np.log(P))), abs=1e-10)
    assert truth["exact"]
    for s, kl, m in zip(p.shifts, kls, truth["members"], strict=True):
        Q = markov_family(p.symbols, p.scale, p.family_seed, p.far_seed, s).emission_probabilities
        assert kl == pytest.approx(_kl_nats(P, Q), abs=1e-10)
        assert m["kl_reverse_nats"] == pytest.approx(_kl_nats(Q, P), abs=1e-10)
    assert all(a < b for a, b in zip(kls, kls[1:], strict=False))  # grows along the path
    z = markov_family(p.symbols, p.scale, p.family_seed, p.far_seed, 0.0)
    np.testing.assert_allclose(z.emission_probabilities.sum(axis=1), 1.0, atol=1e-12)


def test_markov_sampler_follows_the_chain_and_bayes_loss_is_its_log_loss() -> None:
    chain = markov_family(4, 1.5, 3, 4, 0.0)
    x = sample_markov(chain, 200_000, seed=7)
    assert np.array_equal(x, sample_markov(chain, 200_000, seed=7))
    P = chain.emission_probabilities
    counts = np.zeros((4, 4))
    np.add.at(counts, (x[:-1], x[1:]), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(freq, P, atol=0.01)
    np.testing.assert_allclose(np.bincount(x, minlength=4) / x.size,
                               chain.stationary_distribution(), atol=0.01)
    mean, se = bayes_loss(chain, x[:10_001])
    want = -np.mean(np.log(P[x[:10_000], x[1:10_001]]))
    assert mean == pytest.approx(want, rel=1e-12) and 0 < se < 0.05


def test_data_run_writes_nested_subsets_and_one_held_out_tail(tmp_path: Path) -> None:
    from occamlab.experiments import transfer_data
    from occamlab.train import split_tokens

    cfg = transfer_data.Config(corpus="", sizes=(100, 400), val_tokens=64, symbols=5, seed=3)
    out = transfer_data.run(cfg, tmp_path)
    val = np.load(tmp_path / "val.npy")
    assert val.size == 65 and out.result["val_tokens"] == 65
    small, big = (np.load(tmp_path / f"train-{d}.npy") for d in (100, 400))
    assert np.array_equal(small[:100], big[:100])  # nested
    for d, arr in ((100, small), (400, big)):
        split = split_tokens(arr, val_fraction=val_fraction(d, 64), context=8)
        assert split.train.size == d and np.array_equal(split.val, val)
    assert math.isfinite(out.result["val_bayes_loss"])


def test_evaluate_matches_the_training_runs_own_validation_loss(tmp_path: Path) -> None:
    from occamlab.experiments import evaluate
    from occamlab.train import DataConfig, ModelConfig, TrainConfig, train

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 7, 3000)
    np.save(tmp_path / "val.npy", tokens[-257:])
    cfg = TrainConfig(model=ModelConfig(vocab_size=7, context=16, d_model=8, n_layer=1, n_head=1),
                      data=DataConfig(corpus="x", max_epochs=100), steps=20, batch_size=4,
                      eval_every=5, eval_tokens=256, threads=1, device="cpu")
    _, res = train(cfg, tokens=tokens[:-257], val_tokens=tokens[-257:], out=tmp_path / "run")
    out = evaluate.run(evaluate.Config(checkpoint=str(tmp_path / "run" / "best"),
                                       data=str(tmp_path / "val.npy"), max_tokens=256,
                                       device="cpu"), tmp_path)
    assert out.result["n_tokens"] == 256
    assert out.result["loss"] == pytest.approx(res.best_val_loss, abs=1e-5)


@pytest.mark.parametrize("change,match", [
    ({"scratch_sizes": (128, 512, 2048)}, "scratch_sizes has 3 distinct points"),
    ({"finetune_sizes": (128,)}, "finetune_sizes has 1 distinct points"),
    ({"models": ((16, 1, 2),), "lora_models": ((16, 1, 2),)}, "beta is a slope in N"),
    ({"lora_ranks": (1, 4, 32)}, "LoRA rank 32 is larger than the layers it adapts"),
    ({"finetune_sizes": (128, 65536)}, "beyond the from-scratch ladder"),
    ({"sources": ("shakespeare",)}, "at least two distinct corpora"),
    ({"process": ProcessFamily(finetune_sizes=(128, 512, 2048))}, "needs at least 4"),
    ({"process": ProcessFamily(shifts=(0.5,))}, "at least 2 sources"),
    ({"val_tokens": 1000}, "multiple of the context"),
])
def test_bad_configs_are_clear_errors_before_anything_runs(change: dict[str, Any],
                                                           match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Config(**change)


def test_preflight_refuses_a_d_f_larger_than_the_target_corpus_and_a_missing_corpus(
        monkeypatch: Any) -> None:
    from occamlab.train import CorpusInfo, CorpusList

    def corpora(available: bool, n_bytes: int) -> CorpusList:
        return CorpusList(tuple(CorpusInfo(n, "x", "", "", f"install {n}", available, 1, n_bytes,
                                           None) for n in ("python-stdlib", "shakespeare",
                                                           "python-docs")))

    monkeypatch.setattr("occamlab.train.list_corpora", lambda: corpora(True, 15_000))
    with pytest.raises(ConfigError, match="ladder asks for D = 8192"):
        transfer.preflight(Config())
    monkeypatch.setattr("occamlab.train.list_corpora", lambda: corpora(False, 0))
    with pytest.raises(OccamError, match="install python-stdlib"):
        transfer.preflight(Config())


def test_plan_shares_each_pretrained_checkpoint_and_reuses_run_ids() -> None:
    config = Config()
    stages = transfer.plan(config)
    assert [s.name for s in stages] == ["data", "train", "finetune"]
    pre = {r.id for r in stages[1].runs if r.point["role"] == "pretrain"}
    assert len(pre) == len(config.models) * len(config.sources) + len(config.process.shifts)
    used = [r.config["checkpoint"].split("/")[0][4:] for r in stages[2].runs
            if r.experiment == "finetune"]
    assert set(used) == pre  # every fine-tune starts from a stored pretraining run, none trains its own
    assert [r.id for r in stages[2].runs] == [r.id for r in transfer.plan(config)[2].runs]


def test_tiny_demo_section(tiny_demo: Any) -> None:
    out, res = tiny_demo
    entry = json.loads((out / "results.json").read_text())["transfer"]
    assert entry["status"] in ("ok", "flagged"), entry.get("error")
    r = entry["results"]
    assert set(r) >= {"main", "process", "lora", "loss_to_loss", "claims", "protocol"}
    assert sum(r["failed_runs"].values()) == 0
    for src in r["main"]["sources"].values():
        assert len(src["points"]) == src["n_runs"] > 0  # every fine-tune is shown
    fam = r["process"]
    assert fam["truth"]["exact"] and fam["floor"]["n_checked"] > 0
    assert fam["floor"]["n_below"] == 0  # no model beats the exact floor
    page = (out / "index.html").read_text()
    assert "<h2 id='transfer'" in page
    assert entry["headline"] in page.replace("&#x27;", "'")
    for m in fam["members"]:
        assert f"{m['kl_nats']:.3g}" in page  # the exact divergences are on the page
    diff = r["main"].get("alpha_difference")
    if diff and None not in (diff.get("ci") or [None]):  # the pair's alpha sits beside claim 2
        assert "On the natural-language pair" in page and f"{diff['value']:.3g}" in page
    for name, src in r["main"]["sources"].items():
        assert f"{name}'s on {src['n_used']}" in page.replace("&#x27;", "'")  # its points
    assert "quick size" not in page  # the point count, not the preset name, explains the width
