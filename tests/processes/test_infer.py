"""Epsilon-machine inference from samples (CSSR): recovery, convergence, bad input, CLI, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occamlab.cli import main
from occamlab.errors import ConfigError, DataError
from occamlab.processes import (
    InferenceResult,
    analyze,
    build_process,
    infer,
    load_presentation,
    load_symbols,
    sample,
    save_samples,
)
from occamlab.processes._cssr import homogeneity_pvalues, suffix_counts

# (process, max_history): RRXOR synchronizes only after about 8 symbols.
RECOVERY = [("golden-mean", 6), ("even", 6), ("binary-markov", 6), ("rrxor", 8)]


@pytest.mark.parametrize("name,L", RECOVERY)
def test_recovers_machine_at_1e6_symbols(name: str, L: int) -> None:
    truth = analyze(build_process(name))
    s = sample(build_process(name), 1_000_000, seed=11)
    r = infer(s, max_history=L)
    assert r.n_states == truth.n_causal_states
    assert r.info.n_causal_states == truth.n_causal_states
    assert abs(r.statistical_complexity - truth.statistical_complexity) < 0.02
    assert abs(r.entropy_rate - truth.entropy_rate) < 0.02
    assert abs(r.excess_entropy - truth.excess_entropy) < 0.02
    assert r.presentation().is_unifilar() and r.presentation().is_irreducible()


def test_batch_of_sequences_and_no_word_across_rows() -> None:
    s = sample(build_process("golden-mean"), 2000, batch=100, seed=3)
    r = infer(s, max_history=4)
    assert r.n_sequences == 100 and r.n_symbols == 200_000 and r.n_states == 2
    # Two rows "...0" and "0...": joined they would show the forbidden word 00.
    X = np.array([[1, 1, 0], [0, 1, 1]])
    sc = suffix_counts(X, 2, 1, 1)
    row0 = np.searchsorted(sc.codes[1], 0)  # history "0"
    assert sc.codes[1][row0] == 0 and sc.next[1][row0, 0] == 0


def test_error_shrinks_with_sample_size() -> None:
    truth = analyze(build_process("golden-mean"))
    errs = []
    for n in (2_000, 20_000, 200_000):
        e = [abs(infer(sample(build_process("golden-mean"), n, seed=sd), max_history=4)
                 .entropy_rate - truth.entropy_rate) for sd in range(4)]
        errs.append(float(np.mean(e)))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.01


@pytest.mark.slow
def test_error_shrinks_like_one_over_root_n() -> None:
    truth = analyze(build_process("even"))
    sizes = [10_000, 100_000, 1_000_000]
    rms = []
    for n in sizes:
        e = []
        for sd in range(8):
            r = infer(sample(build_process("even"), n, seed=100 + sd), max_history=6)
            assert r.n_states == 2
            e.append(r.statistical_complexity - truth.statistical_complexity)
        rms.append(float(np.sqrt(np.mean(np.square(e)))))
    slope = np.polyfit(np.log10(sizes), np.log10(rms), 1)[0]
    assert rms[0] > rms[1] > rms[2] and -0.8 < slope < -0.3


def test_bootstrap_interval_covers_truth_and_is_seeded() -> None:
    truth = analyze(build_process("golden-mean"))
    s = sample(build_process("golden-mean"), 50_000, seed=5)
    r = infer(s, max_history=4, bootstrap=40, seed=2)
    for ci, v in [(r.entropy_rate_ci, truth.entropy_rate),
                  (r.statistical_complexity_ci, truth.statistical_complexity),
                  (r.excess_entropy_ci, truth.excess_entropy)]:
        assert ci is not None and ci[0] <= v <= ci[1] and ci[1] - ci[0] < 0.05
    assert len(r.bootstrap_state_counts) == 40 and r.block_length == 37
    again = infer(s, max_history=4, bootstrap=40, seed=2)
    assert again.to_dict() == r.to_dict()
    other = infer(s, max_history=4, bootstrap=40, seed=3)
    assert other.entropy_rate_ci != r.entropy_rate_ci


@pytest.mark.slow
def test_bootstrap_coverage_study() -> None:
    truth = analyze(build_process("golden-mean")).entropy_rate
    hits = 0
    for rep in range(30):
        s = sample(build_process("golden-mean"), 20_000, seed=1000 + rep)
        ci = infer(s, max_history=3, bootstrap=100, seed=rep).entropy_rate_ci
        assert ci is not None
        hits += ci[0] <= truth <= ci[1]
    assert hits >= 24  # nominal 95%: 28.5 of 30 expected


def test_json_round_trip_and_machine_file(tmp_path, result_contract) -> None:
    s = sample(build_process("even"), 20_000, seed=1)
    r = infer(s, max_history=5, bootstrap=5)
    result_contract(r)
    back = InferenceResult.from_dict(json.loads(json.dumps(r.to_dict())))
    np.testing.assert_array_equal(back.presentation().matrices, r.presentation().matrices)
    f = r.save_machine(tmp_path / "m.json")
    p = load_presentation(f)
    np.testing.assert_array_equal(p.matrices, r.presentation().matrices)
    assert p.symbols == ("0", "1") and analyze(p).statistical_complexity == pytest.approx(
        r.statistical_complexity, abs=1e-12)
    with pytest.raises(ConfigError, match=".json"):
        r.save_machine(tmp_path / "m.txt")


def test_cli_sample_infer_info_round_trip(tmp_path, capsys) -> None:
    npz, out, mach = tmp_path / "s.npz", tmp_path / "r.json", tmp_path / "m.json"
    assert main(["process", "sample", "golden-mean", "-n", "50000", "--seed", "4",
                 "--out", str(npz)]) == 0
    assert main(["process", "infer", str(npz), "--max-history", "4", "--bootstrap", "5",
                 "--json", str(out), "--machine", str(mach)]) == 0
    d = json.loads(out.read_text())
    assert d["max_history"] == 4 and d["bootstrap"] == 5 and len(d["machine"]["states"]) == 2
    assert d["info"]["n_causal_states"] == 2 and d["entropy_rate_ci"][0] < d["entropy_rate_ci"][1]
    capsys.readouterr()
    assert main(["process", "info", "--file", str(mach), "--json", "-"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["statistical_complexity"] == pytest.approx(
        d["info"]["statistical_complexity"], abs=1e-12)
    # A .npy integer array works too, and --json - prints only JSON.
    np.save(tmp_path / "x.npy", np.load(npz)["symbols"][0].astype(np.int32))
    assert main(["process", "infer", str(tmp_path / "x.npy"), "--max-history", "3",
                 "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["alphabet"] == ["0", "1"]


def _bad_file(tmp_path, kind: str):
    f = tmp_path / f"bad-{kind}.npy"
    if kind == "empty":
        f.write_bytes(b"")
    elif kind == "pickled":
        np.save(f, np.array([[0, 1], "x"], dtype=object), allow_pickle=True)
    elif kind == "garbage":
        f.write_bytes(b"not a numpy file at all")
    elif kind == "nosymbols":
        f = tmp_path / "bad.npz"
        np.savez(f, states=np.zeros(3))
    elif kind == "float":
        np.save(f, np.array([0.0, 1.5, 1.0, 0.0] * 10))
    return f


@pytest.mark.parametrize("kind,needle", [
    ("empty", "empty"), ("pickled", "pickled"), ("garbage", "cannot read"),
    ("nosymbols", "no 'symbols'"), ("float", "integer array"),
])
def test_bad_files(tmp_path, capsys, kind: str, needle: str) -> None:
    f = _bad_file(tmp_path, kind)
    with pytest.raises(DataError, match=needle):
        infer(f)
    assert main(["process", "infer", str(f)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("arr,kw,needle", [
    (np.array([0, 1, -1, 0] * 10), {}, "negative symbol -1"),
    (np.array([0, 1, 2, 0] * 10), {"symbols": ["a", "b"]}, "symbol 2 at"),
    (np.array([0, 1, 1, 0, 1]), {"max_history": 6}, "too short"),
    (np.zeros(100, dtype=int), {}, "only one symbol"),
    (np.zeros((2, 2, 2), dtype=int), {}, "1-D"),
    (np.zeros(0, dtype=int), {}, "empty"),
])
def test_bad_arrays(arr, kw, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        infer(arr, **kw)


@pytest.mark.parametrize("kw,needle", [
    ({"max_history": 0}, "max_history"), ({"alpha": 1.5}, "alpha"),
    ({"bootstrap": -1}, "bootstrap"), ({"test": "ks"}, "test"), ({"seed": -2}, "seed"),
    ({"bootstrap": 2, "block_length": 3}, "block_length"), ({"future_length": 0}, "future"),
])
def test_bad_settings(kw, needle: str) -> None:
    x = sample(build_process("golden-mean"), 500, seed=0).symbols
    with pytest.raises(ConfigError, match=needle):
        infer(x, max_history=kw.pop("max_history", 3), **kw)


def test_load_symbols_reads_save_samples(tmp_path) -> None:
    s = sample(build_process("mess3"), 30, batch=2, seed=1)
    save_samples(s, tmp_path / "m.npz")
    X, names = load_symbols(tmp_path / "m.npz")
    assert X.shape == (2, 30) and names == ("A", "B", "C")
    with pytest.raises(ConfigError, match=".npz"):
        load_symbols(tmp_path / "m.csv")
    with pytest.raises(DataError, match="does not exist"):
        load_symbols(tmp_path / "none.npz")


def test_homogeneity_tests_agree_with_scipy() -> None:
    from scipy.stats import chi2_contingency

    a, b = np.array([30, 50, 20]), np.array([[40, 35, 25], [30, 50, 20]])
    p = homogeneity_pvalues(a, b)
    for i in range(2):
        ref = chi2_contingency(np.vstack([a, b[i]]), correction=False).pvalue
        assert p[i] == pytest.approx(ref, rel=1e-10)
    g = homogeneity_pvalues(a, b[:1], "g")[0]
    ref = chi2_contingency(np.vstack([a, b[0]]), correction=False,
                           lambda_="log-likelihood").pvalue
    assert g == pytest.approx(ref, rel=1e-10)
    assert homogeneity_pvalues(np.array([5, 0]), np.array([[7, 0]]))[0] == 1.0


def test_g_test_and_other_alphabets() -> None:
    r = infer(sample(build_process("rrxor"), 200_000, seed=2), max_history=8, test="g")
    assert r.n_states == 5 and r.test == "g"
    s = sample(build_process("mess3"), 20_000, seed=1)
    r3 = infer(s, max_history=2)
    assert r3.alphabet == ("A", "B", "C") and r3.n_states >= 1


def test_max_depth_caps_only_the_excess_entropy_search() -> None:
    """C_mu and h_mu of the inferred machine do not depend on max_depth; E becomes a lower bound
    (RRXOR's mixed states close only at depth 3+: at depth 1 E is cut short)."""
    s = sample(build_process("rrxor"), 200_000, seed=2)
    full = infer(s, max_history=8)
    capped = infer(s, max_history=8, max_depth=1, bootstrap=3, seed=1)
    assert capped.n_states == full.n_states == 5
    assert capped.statistical_complexity == pytest.approx(full.statistical_complexity, abs=1e-12)
    assert capped.entropy_rate == pytest.approx(full.entropy_rate, abs=1e-12)
    assert capped.excess_entropy < full.excess_entropy - 0.1
    assert any("capped at depth 1" in n for n in capped.notes)
    again = infer(s, max_history=8, max_depth=1, bootstrap=3, seed=1)
    assert again.statistical_complexity_ci == capped.statistical_complexity_ci
    with pytest.raises(ConfigError, match="max_depth"):
        infer(s, max_history=8, max_depth=0)
