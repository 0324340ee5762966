"""markov_chain and kl_divergence_rate against closed forms and brute-force block divergences."""

from __future__ import annotations

import numpy as np
import pytest

from occamlab.errors import ConfigError, DataError
from occamlab.processes import analyze, build_process, kl_divergence_rate, markov_chain


def _block_kl(p, q, n: int) -> float:  # type: ignore[no-untyped-def]
    """D(p^n || q^n) in bits by enumerating every word of length n (stationary starts)."""
    a = p.word_probabilities(n).ravel()
    b = q.word_probabilities(n).ravel()
    m = a > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(a[m] * np.log2(a[m] / b[m])))


def _kl2(a: float, b: float) -> float:
    """KL(Bernoulli(a) || Bernoulli(b)) in bits."""
    out = 0.0
    for x, y in ((a, b), (1 - a, 1 - b)):
        if x > 0:
            out += x * np.log2(x / y)
    return out


def _random_chain(k: int, seed: int, scale: float = 1.5) -> np.ndarray:
    z = np.random.default_rng(seed).normal(0, scale, (k, k))
    P = np.exp(z - z.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def test_markov_chain_is_the_binary_markov_process_and_has_the_chain_entropy_rate() -> None:
    m = markov_chain([[0.9, 0.1], [0.3, 0.7]])
    bm = build_process("binary-markov", {"p": 0.1, "q": 0.3})
    np.testing.assert_allclose(m.matrices, bm.matrices, atol=0)
    assert m.is_unifilar()
    P = _random_chain(5, 3)
    chain = markov_chain(P, symbols="abcde")
    pi = chain.stationary_distribution()
    np.testing.assert_allclose(pi @ P, pi, atol=1e-13)
    h = float(-(pi[:, None] * P * np.log2(P)).sum())
    assert analyze(chain).entropy_rate == pytest.approx(h, abs=1e-10)
    np.testing.assert_allclose(chain.word_probabilities(2), pi[:, None] * P, atol=1e-15)


@pytest.mark.parametrize("bad", [[[0.5, 0.5]], [[0.9, 0.2], [0.5, 0.5]], [[1.2, -0.2], [0, 1]]])
def test_markov_chain_rejects_non_stochastic_matrices(bad: list[list[float]]) -> None:
    with pytest.raises(DataError):
        markov_chain(bad)


@pytest.mark.parametrize("pq,pq2", [((0.1, 0.3), (0.2, 0.5)), ((0.4, 0.4), (0.5, 0.5)),
                                    ((0.7, 0.9), (0.1, 0.2))])
def test_binary_markov_closed_form(pq: tuple[float, float], pq2: tuple[float, float]) -> None:
    """D = pi_0 KL(p || p') + pi_1 KL(q || q'), pi_0 = q / (p + q)."""
    (p, q), (p2, q2) = pq, pq2
    a = build_process("binary-markov", {"p": p, "q": q})
    b = build_process("binary-markov", {"p": p2, "q": q2})
    exact = (q * _kl2(p, p2) + p * _kl2(q, q2)) / (p + q)
    assert kl_divergence_rate(a, b) == pytest.approx(exact, abs=1e-12)
    assert kl_divergence_rate(a, a) == pytest.approx(0.0, abs=1e-15)


def test_markov_chains_against_brute_force_block_divergences() -> None:
    """For Markov chains D(p^n || q^n) = D(pi_p || pi_q) + (n - 1) D_rate exactly, so the
    increments of the block divergence equal the rate from n = 1 on."""
    P, Q = markov_chain(_random_chain(3, 1)), markov_chain(_random_chain(3, 2))
    rate = kl_divergence_rate(P, Q)
    assert rate > 0.05
    for n in (1, 3, 6):
        assert _block_kl(P, Q, n + 1) - _block_kl(P, Q, n) == pytest.approx(rate, abs=1e-12)
    # and the direction matters
    assert kl_divergence_rate(Q, P) != pytest.approx(rate, abs=1e-3)


def test_synchronizing_unifilar_processes_against_brute_force() -> None:
    """The even process is not Markov of any finite order; its block divergence increments
    converge to the rate as the predictor synchronizes (after the first 0)."""
    e1, e2 = build_process("even", {"p": 0.5}), build_process("even", {"p": 0.3})
    rate = kl_divergence_rate(e1, e2)
    inc = [_block_kl(e1, e2, n + 1) - _block_kl(e1, e2, n) for n in (8, 12, 16)]
    assert abs(inc[2] - rate) < abs(inc[1] - rate) < abs(inc[0] - rate)
    assert inc[2] == pytest.approx(rate, abs=2e-4)
    bm = build_process("binary-markov", {"p": 0.3, "q": 0.6})
    rate_bm = kl_divergence_rate(e1, bm)  # q Markov: exact
    assert _block_kl(e1, bm, 17) - _block_kl(e1, bm, 16) == pytest.approx(rate_bm, abs=1e-3)


def test_forbidden_words_give_an_infinite_rate_and_bad_input_is_an_error() -> None:
    even, bm = build_process("even"), build_process("binary-markov", {"p": 0.3, "q": 0.6})
    assert kl_divergence_rate(bm, even) == float("inf")  # bm emits 010, which even forbids
    assert kl_divergence_rate(bm, build_process("golden-mean")) == float("inf")
    with pytest.raises(ConfigError, match="different symbols"):
        kl_divergence_rate(markov_chain(_random_chain(3, 0)), bm)
    with pytest.raises(ConfigError, match="not unifilar"):
        kl_divergence_rate(bm, build_process("sns"))


def test_docstring_examples() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("occamlab.processes._divergence"))
    assert result.attempted > 0 and result.failed == 0
