"""Exact measures against closed forms (REFERENCE.md) and against a second algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from occamlab.processes import (
    Presentation,
    analyze,
    block_entropies,
    build_process,
    causal_state_analysis,
    entropy_bits,
    estimate_entropy_rate,
    lohr_crossover,
    lohr_entropy,
)

LOG3 = np.log2(3.0)


def h2(p: float) -> float:
    return float(entropy_bits(np.array([p, 1 - p])))


def test_golden_mean_closed_forms() -> None:
    info = analyze(build_process("golden-mean"))
    assert info.statistical_complexity == pytest.approx(LOG3 - 2 / 3, abs=1e-9)
    assert info.entropy_rate == pytest.approx(2 / 3, abs=1e-9)
    assert info.excess_entropy == pytest.approx(LOG3 - 4 / 3, abs=1e-9)
    assert info.crypticity == pytest.approx(2 / 3, abs=1e-9)
    assert info.n_causal_states == 2 and info.markov_order == 1 and not info.truncated


def test_even_closed_forms_and_infinite_markov_order() -> None:
    info = analyze(build_process("even"))
    assert info.statistical_complexity == pytest.approx(LOG3 - 2 / 3, abs=1e-9)
    assert info.entropy_rate == pytest.approx(2 / 3, abs=1e-9)
    assert info.excess_entropy == pytest.approx(LOG3 - 2 / 3, abs=1e-9)
    assert info.crypticity == pytest.approx(0.0, abs=1e-9)
    assert info.markov_order is None
    # REFERENCE.md: the block-entropy estimate at L = 14 is only 0.9111.
    H = block_entropies(build_process("even"), 14)
    assert H[14] - 14 * 2 / 3 == pytest.approx(0.9111, abs=5e-5)


@pytest.mark.parametrize("p,q", [(0.1, 0.3), (0.4, 0.4), (0.25, 0.6), (0.7, 0.9), (0.3, 0.7)])
def test_binary_markov_closed_forms(p: float, q: float) -> None:
    info = analyze(build_process("binary-markov", {"p": p, "q": q}))
    iid = abs(p + q - 1) < 1e-12
    C = 0.0 if iid else h2(p / (p + q))
    h = (q * h2(p) + p * h2(q)) / (p + q)
    assert info.statistical_complexity == pytest.approx(C, abs=1e-9)
    assert info.entropy_rate == pytest.approx(h, abs=1e-9)
    assert info.excess_entropy == pytest.approx(C - h if not iid else 0.0, abs=1e-9)
    assert info.n_causal_states == (1 if iid else 2)


def test_lohr_numbers_and_crossover() -> None:
    lohr = build_process("lohr", {"p": 0.4})
    np.testing.assert_allclose(lohr.stationary_distribution(), [0.1, 0.1, 0.8], atol=1e-14)
    assert lohr.state_entropy() == pytest.approx(0.921928, abs=1e-6)
    assert lohr_entropy(0.4) == pytest.approx(lohr.state_entropy(), abs=1e-12)
    info = analyze(lohr)  # it generates the binary Markov process with p = q = 0.4
    assert info.statistical_complexity == pytest.approx(1.0, abs=1e-9)
    assert info.entropy_rate == pytest.approx(h2(0.4), abs=1e-9)
    bm = build_process("binary-markov", {"p": 0.4, "q": 0.4})
    np.testing.assert_allclose(lohr.word_probabilities(8), bm.word_probabilities(8), atol=1e-15)
    x = lohr_crossover()
    assert x == pytest.approx(0.386454, abs=5e-7)
    assert lohr_entropy(x) == pytest.approx(1.0, abs=1e-12)
    for p in (0.39, 0.45, 0.49):
        assert build_process("lohr", {"p": p}).state_entropy() < 1.0
    for p in (0.1, 0.3, 0.38):
        assert build_process("lohr", {"p": p}).state_entropy() > 1.0


@pytest.mark.parametrize("name,params", [
    ("golden-mean", {"p": 0.3}), ("even", {"p": 0.7}), ("rip", {}), ("nemo", {"p": 0.3}),
    ("rrxor", {}), ("z1r", {}), ("period", {"k": 4}), ("binary-markov", {"p": 0.2, "q": 0.6}),
])
def test_two_algorithms_agree(name: str, params: dict) -> None:
    p = build_process(name, params)
    a = causal_state_analysis(p, method="auto")
    b = causal_state_analysis(p, method="mixed-states")
    assert a.excess_entropy_exact and b.excess_entropy_exact
    assert a.n_causal_states == b.n_causal_states
    assert a.statistical_complexity == pytest.approx(b.statistical_complexity, abs=1e-9)
    assert a.entropy_rate == pytest.approx(b.entropy_rate, abs=1e-9)
    assert a.excess_entropy == pytest.approx(b.excess_entropy, abs=1e-9)

    # E is time-symmetric: the reversed process has the same E and h_mu (a third route).
    r = causal_state_analysis(p.reverse(), method="mixed-states")
    assert r.excess_entropy == pytest.approx(a.excess_entropy, abs=1e-9)
    assert r.entropy_rate == pytest.approx(a.entropy_rate, abs=1e-9)


@pytest.mark.parametrize("name", ["golden-mean", "even", "rip", "nemo", "rrxor", "z1r"])
def test_spectral_E_matches_block_entropy_limit(name: str) -> None:
    p = build_process(name)
    info = analyze(p)
    H = block_entropies(p, 120)
    h = np.diff(H)
    partial = float(np.sum(h - info.entropy_rate))  # sum_{L<=120} (h(L) - h_mu)
    assert partial == pytest.approx(info.excess_entropy, abs=1e-9)


def test_library_values_known_in_closed_form() -> None:
    rrxor = analyze(build_process("rrxor"))
    assert rrxor.entropy_rate == pytest.approx(2 / 3, abs=1e-9)
    assert rrxor.excess_entropy == pytest.approx(LOG3 + 2 / 3, abs=1e-9)  # phase + 2/3 bit
    per = analyze(build_process("period", {"k": 5}))
    assert per.statistical_complexity == pytest.approx(np.log2(5), abs=1e-9)
    assert per.excess_entropy == pytest.approx(np.log2(5), abs=1e-9)
    assert per.entropy_rate == pytest.approx(0.0, abs=1e-12) and per.markov_order == 4
    z = analyze(build_process("z1r"))
    assert z.statistical_complexity == pytest.approx(LOG3, abs=1e-9)
    assert z.entropy_rate == pytest.approx(1 / 3, abs=1e-9)
    rip = analyze(build_process("rip"))
    assert rip.statistical_complexity == pytest.approx(h2(0.2) + 0.8, abs=1e-9)  # pi .4 .2 .4
    assert rip.entropy_rate == pytest.approx(0.6, abs=1e-9)


def sns_exact(n: int = 400) -> tuple[float, float]:
    """SNS with p = q = 1/2 is a renewal process: causal state k = 1s since the last 0,
    pi_k = (k + 1) / 2^(k + 2), Pr(0 | k) = k / (2 (k + 1))."""
    k = np.arange(n, dtype=float)
    pi = (k + 1) / 2.0 ** (k + 2)
    hz = k / (2 * (k + 1))
    return float(entropy_bits(pi)), float(pi @ entropy_bits(np.stack([hz, 1 - hz], 1), axis=1))


def test_sns_truncated_at_depth_1000() -> None:
    C, h = sns_exact()
    info = analyze(build_process("sns"), max_depth=1000)
    assert info.truncated and info.n_causal_states is None
    assert info.left_out < 1e-12
    assert info.statistical_complexity == pytest.approx(C, abs=1e-9)
    lo, hi = info.entropy_rate_bounds
    assert lo <= h <= hi and hi - lo < 1e-5
    assert info.entropy_rate == pytest.approx(h, abs=1e-5)  # midpoint of the exact bounds
    shallow = analyze(build_process("sns"), max_depth=20)
    assert shallow.left_out > 1e-6 and shallow.statistical_complexity < C


def test_mess3_is_reported_infinite() -> None:
    info = analyze(build_process("mess3"), max_states=20_000)
    assert info.truncated and info.n_causal_states is None and info.statistical_complexity is None
    assert info.left_out == 1.0
    lo, hi = info.entropy_rate_bounds
    assert lo <= info.entropy_rate + 3e-3 and info.entropy_rate - 3e-3 <= hi
    assert info.excess_entropy > 0  # a lower bound


def test_blackwell_bounds_bracket_exact_rate_of_nonunifilar_lohr() -> None:
    est = estimate_entropy_rate(build_process("lohr", {"p": 0.3}), seed=1, n_steps=5000)
    exact = h2(0.3)
    assert est.lower - 1e-12 <= exact <= est.upper + 1e-12
    assert abs(est.estimate - exact) < 5 * est.stderr + 1e-3


def random_machine(n: int, seed: int) -> Presentation:
    """Unifilar: state i emits 0 and moves to i + 1; half the states may also emit 1 and jump."""
    rng = np.random.default_rng(seed)
    T = np.zeros((2, n, n))
    for i in range(n):
        pr = 1.0 if rng.random() < 0.5 else rng.uniform(0.2, 0.8)
        T[0, i, (i + 1) % n] = pr
        if pr < 1:
            T[1, i, rng.integers(n)] = 1 - pr
    return Presentation(T)


def test_random_unifilar_machine_two_algorithms() -> None:
    p = random_machine(6, 1)
    a = causal_state_analysis(p, method="auto")
    b = causal_state_analysis(p, method="mixed-states")
    assert a.excess_entropy_exact  # b may close by merging beliefs within tol: compare to 1e-7
    assert a.n_causal_states == 6 and b.stationary.size == 6
    assert a.statistical_complexity == pytest.approx(b.statistical_complexity, abs=1e-7)
    assert a.entropy_rate == pytest.approx(b.entropy_rate, abs=1e-7)
    assert a.excess_entropy == pytest.approx(b.excess_entropy, abs=1e-7)


def test_large_random_machine_reports_inexact_E_as_lower_bound() -> None:
    rng = np.random.default_rng(0)
    n = 40
    T = np.zeros((2, n, n))
    pr = rng.dirichlet([1, 1], size=n)
    T[0, np.arange(n), rng.integers(n, size=n)] = pr[:, 0]
    T[1, np.arange(n), (np.arange(n) + 1) % n] = pr[:, 1]
    a = causal_state_analysis(Presentation(T), max_states=2000)
    assert a.n_causal_states == n and not a.truncated
    if not a.excess_entropy_exact:
        assert 0 <= a.excess_entropy <= a.statistical_complexity + 1e-9


def conditional_state_entropy(p: Presentation, k: int, L: int) -> float:
    """Brute force ``H[S_k | X_{0:L}]`` on a unifilar machine, enumerating all words at once."""
    T = p.matrices
    A, n = p.n_symbols, p.n_states
    prob = T.sum(axis=2)  # (A, n)
    succ = np.argmax(T, axis=2).T  # (n, A)
    words = np.array(np.unravel_index(np.arange(A**L), (A,) * L)).T  # (W, L)
    pi = p.stationary_distribution()
    joint = np.zeros((words.shape[0], n))  # Pr(X_{0:L} = w, S_k = s)
    for s0 in range(n):
        state = np.full(words.shape[0], s0)
        mass = np.full(words.shape[0], pi[s0])
        state_k = state.copy()
        for t in range(L):
            if t == k:
                state_k = state.copy()
            x = words[:, t]
            mass = mass * prob[x, state]
            state = succ[state, x]
        if k >= L:
            state_k = state
        np.add.at(joint, (np.arange(words.shape[0]), state_k), mass)
    pw = joint.sum(axis=1)
    keep = pw > 0
    cond = joint[keep] / pw[keep][:, None]
    return float(pw[keep] @ entropy_bits(cond, axis=1))


@pytest.mark.parametrize("name,order", [("golden-mean", 1), ("even", 0), ("rip", 1), ("rrxor", 0),
                                        ("binary-markov", 1), ("z1r", 0), ("nemo", None)])
def test_cryptic_order_against_brute_force(name: str, order: int | None) -> None:
    """H[S_k | X_{0:L}] decays to 0 with L iff k >= cryptic order; otherwise it levels off."""
    p = build_process(name)
    info = analyze(p)
    assert info.cryptic_order == order
    assert (order == 0) == (abs(info.crypticity) < 1e-9)  # chi = 0 iff k = 0
    machine = causal_state_analysis(p).machine

    def decays(k: int) -> bool:
        a, b = conditional_state_entropy(machine, k, 12), conditional_state_entropy(machine, k, 16)
        return b < 1e-12 or b < 0.8 * a

    if order is None:
        assert not decays(3) and conditional_state_entropy(machine, 3, 16) > 1e-3
    else:
        assert decays(order)
        if order > 0:
            assert not decays(order - 1)
            assert conditional_state_entropy(machine, order - 1, 16) > 1e-3


@pytest.mark.parametrize("name", ["even", "golden-mean", "nemo", "rip", "rrxor"])
def test_excess_entropy_bounds_bracket_the_exact_value(name: str) -> None:
    p = build_process(name)
    exact = analyze(p).excess_entropy
    gaps = []
    for depth in (2, 4, 8):
        info = analyze(p, max_depth=depth)
        if info.excess_entropy_exact:  # the mixed states closed within this depth
            assert info.excess_entropy == pytest.approx(exact, abs=1e-9)
            continue
        lo, hi = info.excess_entropy_bounds
        assert lo - 1e-12 <= exact <= hi + 1e-12
        gaps.append(hi - lo)
    assert gaps == sorted(gaps, reverse=True)
    assert gaps or name == "golden-mean"  # the bounds were exercised
