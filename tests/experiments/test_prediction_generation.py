"""prediction-generation and pvg-probe: probes, clusters and measurements against known answers
(exact linear maps, a hand-built Bayes-optimal transformer of the binary Markov process), the
plan, bad input, and the suite section on the tiny demo."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from occamlab.errors import ConfigError, DataError
from occamlab.experiments import _probes as P
from occamlab.experiments._pvg_measure import measure_truth, plugin_block_entropies
from occamlab.experiments.prediction_generation import PROCESSES, Config, plan
from occamlab.processes import analyze, build_process, lohr_entropy

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")

H04 = -(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6))  # h_mu of binary Markov p = q = 0.4, bits


# ---- probes --------------------------------------------------------------------------------
def _linear_data(n_seq: int, rows: int, d: int, k: int, *, noise: float, seed: int
                 ) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(d, k)), rng.normal(size=k)
    X = rng.normal(size=(n_seq * rows, d))
    Y = X @ W + b + noise * rng.normal(size=(n_seq * rows, k))
    return X, Y, np.repeat(np.arange(n_seq), rows)


def test_probe_recovers_an_exact_linear_map() -> None:
    X, Y, g = _linear_data(60, 10, 5, 3, noise=0.0, seed=0)
    f = P.fit_probe(X[:400], Y[:400], g[:400], X[400:], Y[400:])
    assert f.r2 > 1 - 1e-9 and f.penalty <= 1e-6 and f.n_features == 5
    assert np.allclose(f.predictions, Y[400:], atol=1e-5)


def test_probe_of_unrelated_features_scores_about_zero() -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(4000, 6)), rng.normal(size=(4000, 2))
    g = np.repeat(np.arange(400), 10)
    f = P.fit_probe(X[:3000], Y[:3000], g[:3000], X[3000:], Y[3000:])
    assert -0.02 < f.r2 < 0.01


def test_probe_r2_is_the_variance_explained() -> None:
    # Y = x + noise with var(x) = 1, var(noise) = 1/4: the best linear R^2 is 0.8
    X, Y, g = _linear_data(400, 10, 1, 1, noise=0.0, seed=2)
    Y = X / np.std(X) + 0.5 * np.random.default_rng(3).normal(size=Y.shape)
    f = P.fit_probe(X[:3000], Y[:3000], g[:3000], X[3000:], Y[3000:])
    assert f.r2 == pytest.approx(0.8, abs=0.03)


def test_probe_with_fewer_sequences_than_features_says_so() -> None:
    X, Y, g = _linear_data(4, 50, 5, 2, noise=0.1, seed=0)
    with pytest.raises(DataError, match="4 fitting sequences for 5 features"):
        P.fit_probe(X, Y, g, X, Y, what="block 1")
    with pytest.raises(DataError, match="must agree"):
        P.fit_probe(X, Y[:10], g, X, Y)
    with pytest.raises(DataError, match="not finite"):
        P.fit_probe(np.full_like(X, np.nan), Y, g, X, Y)


def test_belief_classes_and_nearest_value() -> None:
    b = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, -0.0], [0.5 + 1e-9, 0.5 - 1e-9]])
    values, labels = P.belief_classes(b)
    assert len(values) == 2 and labels.tolist() == [1, 0, 1, 0]
    assert P.classify(np.array([[0.9, 0.2], [0.4, 0.6]]), values).tolist() == [1, 0]


def test_silhouette_matches_the_definition() -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    lab = np.array([0, 0, 1, 1])
    # a = 1 for every point; b = 10.5, 9.5, 9.5, 10.5; s = (b - a) / b
    want = np.mean([(10.5 - 1) / 10.5, (9.5 - 1) / 9.5, (9.5 - 1) / 9.5, (10.5 - 1) / 10.5])
    assert P.silhouette(X, lab) == pytest.approx(want, rel=1e-12)
    assert P.silhouette(X, np.zeros(4, dtype=int)) == 0.0


def test_kmeans_and_choose_k_find_three_blobs() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    X = np.concatenate([c + rng.normal(size=(60, 2)) * 0.5 for c in centers])
    k, scores, labels = P.choose_k(X, 6, seed=1)
    assert k == 3 and len(scores) == 5
    assert len({tuple(np.bincount(labels[i * 60:(i + 1) * 60], minlength=3).nonzero()[0])
                for i in range(3)}) == 3  # each blob is one cluster
    with pytest.raises(ConfigError, match="k must"):
        P.kmeans(X, 0)


# ---- truth and block entropies --------------------------------------------------------------
def test_truth_of_a_markov_chain_is_flat_at_the_entropy_rate() -> None:
    t = measure_truth(build_process("binary-markov", {"p": 0.4, "q": 0.4}), 16, 10)
    assert t.entropy_rate == pytest.approx(H04, abs=1e-12) and t.n_causal_states == 2
    assert len(t.conditional_entropy_nats) == 16
    assert np.allclose(t.conditional_entropy_nats, H04 * math.log(2), atol=1e-12)
    assert t.marginal_entropy_nats == pytest.approx(math.log(2))


def test_truth_of_the_even_process_matches_its_block_entropies() -> None:
    p = build_process("even")
    t = measure_truth(p, 32, 10)
    H = analyze(p, block_length=33).block_entropies
    assert np.allclose(t.block_entropies, H[:11], atol=1e-12)
    assert np.allclose(t.conditional_entropy_nats, np.diff(H)[1:] * math.log(2), atol=1e-12)
    c = np.array(t.conditional_entropy_nats)
    assert np.all(np.diff(c) <= 1e-12) and c[-1] > 2 / 3 * math.log(2)


def test_plugin_block_entropies() -> None:
    periodic = np.tile([0, 1], 500)[None]
    assert plugin_block_entropies(periodic, 2, 6) == pytest.approx((0, 1, 1, 1, 1, 1, 1))
    coin = np.random.default_rng(0).integers(0, 2, size=(10, 20_000))
    H = plugin_block_entropies(coin, 2, 4)
    assert H == pytest.approx((0, 1, 2, 3, 4), abs=2e-3)


# ---- the Bayes-optimal transformer of the binary Markov process ---------------------------------
def _oracle(path: Path) -> str:
    """A transformer that predicts the binary Markov process (p = q = 0.4) exactly: the blocks add
    nothing, the stream is the token embedding (+-1, -+1), and an untied head gives the
    log-odds of flipping."""
    import torch

    from occamlab.train import ModelConfig, Transformer, save_checkpoint

    m = Transformer(ModelConfig(vocab_size=2, context=8, d_model=2, n_layer=1, n_head=1,
                                tie_embeddings=False))
    a = math.log(0.4 / 0.6) / 2
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "proj" in name or name == "wpe.weight":
                p.zero_()
        m.wte.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        assert m.head is not None
        m.head.weight.copy_(torch.tensor([[0.0, 0.0], [a, -a]]))
    save_checkpoint(path, m)
    return str(path)


def _probe_config(ckpt: str, **over: Any) -> Any:
    from occamlab.experiments.pvg_probe import Config as Probe

    base = {"checkpoint": ckpt, "process": "binary-markov", "params": {"p": 0.4, "q": 0.4},
            "n_eval": 400, "n_probe_fit": 40, "n_probe_test": 20, "gen_sequences": 40,
            "gen_length": 1000, "gen_min_context": 6, "max_history": 4, "bootstrap": 4,
            "k_max": 4, "cluster_points": 300}
    return Probe.from_dict({**base, **over})


@pytest.fixture(scope="module")
def oracle_report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from occamlab.experiments.pvg_probe import measure

    ckpt = _oracle(tmp_path_factory.mktemp("oracle") / "ckpt")
    return measure(_probe_config(ckpt))


def test_oracle_predicts_at_the_entropy_rate(oracle_report: Any) -> None:
    r = oracle_report
    p, t = r.prediction, r.truth
    assert abs(p.excess) < 1e-6 and p.excess_se < 1e-6  # it is the Bayes-optimal predictor
    assert abs(p.loss - t.entropy_rate_nats) < 3 * p.loss_se
    assert np.allclose(p.loss_by_position, p.optimal_by_position, atol=1e-6)


def test_oracle_stream_holds_the_belief_linearly(oracle_report: Any) -> None:
    pr = oracle_report.probes
    assert pr.layers == ("embedding", "block 1", "all layers")
    assert min(pr.r2) > 1 - 1e-6 and pr.n_belief_values == 2
    assert pr.accuracy == (1.0, 1.0, 1.0) and 0.35 < (pr.chance or 0) < 0.65
    assert pr.simplex_true == ()  # two states: no simplex to draw
    c = oracle_report.clusters
    assert c is not None and c.k == 2 and c.purity == 1.0
    assert c.entropy == pytest.approx(1.0, abs=0.01)  # the causal states' C_mu = 1 bit


def test_oracle_generates_the_process(oracle_report: Any) -> None:
    m, q = oracle_report.inferred_model, oracle_report.inferred_process
    assert m.n_states == q.n_states == 2
    assert m.statistical_complexity == pytest.approx(1.0, abs=0.01)
    assert m.entropy_rate == pytest.approx(H04, abs=0.01)
    g = oracle_report.generation
    exact = oracle_report.truth.block_entropies
    assert np.allclose(g.block_entropies_model[:6], exact[:6], atol=0.02)
    assert g.min_context == 6 and g.n_sequences * g.length == 40_000
    gen = oracle_report.generators
    assert gen.statistical_complexity == pytest.approx(1.0)
    assert gen.lohr_entropy == pytest.approx(lohr_entropy(0.4))
    assert gen.generator_entropy == pytest.approx(0.650, abs=0.005)


def test_report_round_trips_and_renders(oracle_report: Any, result_contract: Any) -> None:
    result_contract(oracle_report)
    assert "excess over Bayes-optimal" in str(oracle_report)


def test_probe_run_bad_input(tmp_path: Path) -> None:
    from occamlab.experiments.pvg_probe import measure

    ckpt = _oracle(tmp_path / "ckpt")
    with pytest.raises(DataError, match="3 fitting sequences for 4 features"):
        measure(_probe_config(ckpt, n_probe_fit=3, n_eval=20, bootstrap=0))
    with pytest.raises(ConfigError, match="vocabulary"):
        measure(_probe_config(ckpt, process="mess3", params={}))
    with pytest.raises(ConfigError, match="n_eval"):
        _probe_config(ckpt, n_eval=1)
    with pytest.raises(ConfigError, match="process"):
        _probe_config(ckpt, process="")


# ---- the plan --------------------------------------------------------------------------------
def test_quick_plan_trains_one_model_per_process_and_probes_each() -> None:
    c = Config.quick()
    train, probe = plan(c)
    assert [s.name for s in (train, probe)] == ["train", "probe"]
    assert [r.point["process"] for r in train.runs] == list(PROCESSES)
    assert sum(r.point["tokens"] for r in train.runs) <= sum(c.tokens)
    for t, p in zip(train.runs, probe.runs, strict=True):
        assert p.config["checkpoint"] == f"run:{t.id}/best"
        assert p.config["process"] == t.point["process"]
        assert p.config["max_history"] == PROCESSES[t.point["process"]][1]
        assert t.config["data"]["corpus"].startswith(f"process:{t.point['process']}?")
        assert t.config["model"]["vocab_size"] == (3 if t.point["process"] == "mess3" else 2)


def test_full_plan_is_a_ladder_sharing_each_process_data() -> None:
    train, probe = plan(Config.full())
    assert len(train.runs) == len(probe.runs) == 4 * 3 * 2
    for name in PROCESSES:
        runs = [r for r in train.runs if r.point["process"] == name]
        assert len({r.config["data"]["corpus"] for r in runs}) == 1
        assert len({r.point["tokens"] for r in runs}) == 2


@pytest.mark.parametrize("kw,needle", [
    ({"processes": ("golden-mean",), "tokens": (10,)}, "not one of"),
    ({"tokens": (10, 10)}, "one positive training length per process"),
    ({"fractions": (0.0,)}, "fractions"), ({"models": ((30, 2, 4),)}, "divisible"),
    ({"processes": ("even", "even"), "tokens": (1, 1)}, "each once"),
    ({"seed": -1}, "seed"), ({"context": 2}, "context"),
])
def test_bad_config(kw: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=needle):
        Config(**kw)


# ---- the section on the tiny demo ------------------------------------------------------------
def test_tiny_demo_section(tiny_demo: Any) -> None:
    out, _ = tiny_demo
    entry = json.loads((out / "results.json").read_text())["prediction-generation"]
    assert entry["status"] in ("ok", "flagged"), entry.get("error")
    r = entry["results"]
    assert list(r["processes"]) == list(PROCESSES) and r["missing"] == []
    want = {"binary-markov": H04, "even": 2 / 3, "rrxor": 2 / 3}
    for name, h in want.items():
        assert r["processes"][name]["truth"]["h_mu_bits"] == pytest.approx(h, abs=1e-9)
    assert r["processes"]["mess3"]["truth"]["n_causal_states"] is None
    for proc in r["processes"].values():
        run = proc["runs"][0]
        assert set(run["loss"]) >= {"value", "ci", "level", "stderr"}
        assert len(run["block_entropies_model"]) == 11
        assert run["probe"]["layers"][-1] == "all layers"
    bm = r["binary_markov"]
    assert bm["c_mu"] == pytest.approx(1.0) and bm["lohr_entropy"] == pytest.approx(0.921928,
                                                                                        abs=1e-6)
    page = (out / "index.html").read_text()
    assert "<h2 id='prediction-generation'" in page
    assert entry["headline"] in page.replace("&#x27;", "'")
    assert page.count("Mess3&#x27;s belief simplex") + page.count("Mess3's belief simplex") >= 1


def test_report_rebuilds_the_same_results(tiny_demo: Any, tmp_path: Path) -> None:
    from occamlab.experiments import build_report

    out, _ = tiny_demo
    store = tmp_path / "store"
    shutil.copytree(out / "store", store)
    build_report(store, tmp_path / "rebuilt")
    a = json.loads((out / "results.json").read_text())["prediction-generation"]
    b = json.loads((tmp_path / "rebuilt" / "results.json").read_text())["prediction-generation"]
    assert a["results"] == b["results"] and a["headline"] == b["headline"]
