"""Exact learning coefficients against the published values and their reductions."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from occamlab.errors import ConfigError
from occamlab.slt import (
    LearningCoefficient,
    dln_lambda,
    normal_crossing_lambda,
    regular_lambda,
    rrr_lambda,
)


def test_regular() -> None:
    lc = regular_lambda(7)
    assert lc.lambda_ == Fraction(7, 2) and lc.multiplicity == 1


@pytest.mark.parametrize(
    ("k", "h", "lam", "m"),
    [
        ([1, 1], None, Fraction(1, 2), 2),  # w1 w2 (REFERENCE.md)
        ([1, 2], None, Fraction(1, 4), 1),  # w1 w2^2 (REFERENCE.md)
        ([1], None, Fraction(1, 2), 1),
        ([3, 3, 1], None, Fraction(1, 6), 2),
        ([1, 2], [1, 0], Fraction(1, 4), 1),  # prior |w1|: (1+1)/2 = 1 vs 1/4
        ([1, 2], [0, 1], Fraction(1, 2), 2),  # (0+1)/2 = 1/2 and (1+1)/4 = 1/2
    ],
)
def test_normal_crossing(k: list[int], h: list[int] | None, lam: Fraction, m: int) -> None:
    lc = normal_crossing_lambda(k, h)
    assert (lc.lambda_, lc.multiplicity) == (lam, m)


def test_rrr_published_examples() -> None:
    assert rrr_lambda(4, 3, 4, 1).lambda_ == 6  # REFERENCE.md
    assert rrr_lambda(5, 3, 5, 3).lambda_ == Fraction(21, 2)  # REFERENCE.md
    # one branch each: M+H < N+r, N+H < M+r, M+N < H+r, general odd (m = 2)
    assert rrr_lambda(1, 1, 5, 1).case == "M+H < N+r"
    assert rrr_lambda(1, 1, 5, 1).lambda_ == Fraction(1 * 1 - 1 + 5, 2)
    assert rrr_lambda(5, 1, 1, 1).lambda_ == Fraction(1 - 1 + 5, 2)
    assert rrr_lambda(1, 5, 1, 1).lambda_ == Fraction(1, 2)
    odd = rrr_lambda(3, 2, 3, 1)  # S = 2*3*6 - 0 - 9 = 27, odd -> (27+1)/8
    assert (odd.lambda_, odd.multiplicity) == (Fraction(7, 2), 2)


def test_rrr_is_at_most_half_the_dimension_and_full_rank_is_regular() -> None:
    for M, H, N in itertools.product(range(1, 6), repeat=3):
        for r in range(min(M, H, N) + 1):
            lc = rrr_lambda(M, H, N, r)
            assert 0 <= lc.lambda_ <= Fraction(H * (M + N), 2)
        # r = H <= min(M, N): the map is a generic rank-H matrix, dimension H(M+N) - H^2
        if H <= min(M, N):
            assert rrr_lambda(M, H, N, H).lambda_ == Fraction(H * (M + N) - H * H, 2)


def test_dln_two_layers_reduces_to_rrr_with_multiplicity() -> None:
    for M, H, N in itertools.product(range(1, 8), repeat=3):
        for r in range(min(M, H, N) + 1):
            a, b = rrr_lambda(M, H, N, r), dln_lambda([M, H, N], r)
            assert (a.lambda_, a.multiplicity) == (b.lambda_, b.multiplicity), (M, H, N, r)


def test_dln_special_cases() -> None:
    # one layer: regular linear model
    assert dln_lambda([3, 4], 2).lambda_ == 6
    # square layers at full rank: generic invertible product, lambda = H^2/2 at any depth
    for depth in range(2, 6):
        assert dln_lambda([5] * (depth + 1), 5).lambda_ == Fraction(25, 2)
    # r = 0 and an identity-width network with zero truth: lambda grows but stays bounded in depth
    values = [dln_lambda([4] + [6] * k + [4], 1).lambda_ for k in range(1, 12)]
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert values[-1] == values[-2] or values[-1] - values[-2] < values[1] - values[0]
    d_last = sum(a * b for a, b in itertools.pairwise([4] + [6] * 11 + [4]))
    assert values[-1] < Fraction(d_last, 20)


def test_dln_sigma_unique_and_bounded_everywhere() -> None:
    for ws in itertools.product(range(1, 6), repeat=4):
        for r in range(min(ws) + 1):
            lc = dln_lambda(list(ws), r)  # asserts Sigma is unique
            assert 0 <= lc.lambda_ <= Fraction(lc.n_params, 2)
            assert lc.multiplicity in (1, 2)


def test_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="exceeds"):
        rrr_lambda(2, 2, 2, 3)
    with pytest.raises(ConfigError, match="widths"):
        dln_lambda([3], 1)
    with pytest.raises(ConfigError, match="k\\[0\\]"):
        normal_crossing_lambda([0])
    with pytest.raises(ConfigError, match="must match"):
        normal_crossing_lambda([1, 2], [0])


def test_contract(result_contract) -> None:  # type: ignore[no-untyped-def]
    for lc in [rrr_lambda(4, 3, 4, 1), dln_lambda([4, 3, 2, 5], 1), normal_crossing_lambda([1, 2])]:
        result_contract(lc)
        assert LearningCoefficient.from_dict(lc.to_dict()) == lc
