"""Quantizers, low rank, the critical threshold n_q, two-part codes and the redundancy formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from occamlab.errors import ConfigError
from occamlab.slt import (
    CompressionResult,
    CompressionSpec,
    TwoPartCode,
    asymptotic_redundancy,
    compress_model,
    compressed_bits,
    critical_compression,
    gaussian_nll,
    low_rank_tensor,
    make_linear_regression,
    quantize_tensor,
    two_part_code_length,
)

torch.set_num_threads(1)


def test_rtn_grid_and_error_bound() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 64, generator=g)
    for scheme in ("rtn-tensor", "rtn-channel", "rtn-group"):
        for k in (2, 3, 4, 8):
            spec = CompressionSpec(scheme, k, group_size=16)
            q = quantize_tensor(w, spec)
            assert q.shape == w.shape
            # asymmetric RTN: error at most half a step of the block's range
            if scheme == "rtn-tensor":
                step = (w.max() - w.min()) / (2**k - 1)
                assert (q - w).abs().max() <= step / 2 * (1 + 1e-5) + 1e-7
                assert torch.unique(q).numel() <= 2**k
            if scheme == "rtn-channel":
                step = (w.amax(1) - w.amin(1)) / (2**k - 1)
                assert ((q - w).abs().amax(1) <= step / 2 * (1 + 1e-5) + 1e-7).all()
                for row in q:
                    assert torch.unique(row).numel() <= 2**k
            if scheme == "rtn-group":
                blocks = q.reshape(-1, 16)
                for b in blocks:
                    assert torch.unique(b).numel() <= 2**k
    # finer blocks never quantize worse than coarser ones here
    errs = [(quantize_tensor(w, CompressionSpec(s, 3, group_size=16)) - w).pow(2).mean()
            for s in ("rtn-tensor", "rtn-channel", "rtn-group")]
    assert errs[0] >= errs[1] >= errs[2]
    # 16 bits is nearly lossless; a grid value is kept exactly
    assert (quantize_tensor(w, CompressionSpec("rtn-channel", 16)) - w).abs().max() < 1e-4
    grid = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert torch.equal(quantize_tensor(grid, CompressionSpec("rtn-tensor", 2)), grid)


def test_symmetric_and_group_padding() -> None:
    w = torch.tensor([[-1.0, -0.5, 0.0, 0.25, 1.0]])
    q = quantize_tensor(w, CompressionSpec("rtn-tensor", 2, symmetric=True))  # levels -1, 0, 1
    assert torch.equal(q, torch.tensor([[-1.0, 0.0, 0.0, 0.0, 1.0]]))  # ties round to even
    q = quantize_tensor(w, CompressionSpec("rtn-group", 1, group_size=2))  # padded last group
    assert q.shape == w.shape and q[0, 4] == 1.0


def test_low_rank_is_eckart_young() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 5, generator=g, dtype=torch.float64)
    s = torch.linalg.svdvals(w)
    for r in range(1, 5):
        err = torch.linalg.matrix_norm(low_rank_tensor(w, r) - w)
        assert err == pytest.approx(float(s[r:].pow(2).sum().sqrt()), rel=1e-10)
    assert torch.equal(low_rank_tensor(w, 9), w)


def test_compress_model_copies_and_counts_bits() -> None:
    model = nn.Sequential(nn.Linear(64, 8), nn.Linear(8, 2))
    before = [p.detach().clone() for p in model.parameters()]
    spec = CompressionSpec("rtn-channel", 4)
    out = compress_model(model, spec)
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.equal(out[0].bias, model[0].bias)  # biases stay full precision
    bits = compressed_bits(model, spec)
    expect = 4 * (64 * 8 + 8 * 2) + (32 + 4) * (8 + 2) + 32 * (8 + 2)
    assert bits == expect
    assert compressed_bits(model, CompressionSpec("svd", 1)) == 32 * (1 * (8 + 64 + 1) + 1 * (2 + 8 + 1) + 10)


def test_critical_threshold_by_bisection_matches_a_full_scan() -> None:
    km = make_linear_regression(16, 4, n=3000, seed=0)
    for scheme, eps in [("rtn-channel", 0.01), ("rtn-tensor", 0.001), ("svd", 0.05)]:
        res = critical_compression(km.model, km.loss_fn, km.data, scheme=scheme, epsilon=eps)
        top = 4 if scheme == "svd" else 16
        scan = {}
        for lv in range(1, top + 1):
            spec = CompressionSpec(scheme, lv)
            out = compress_model(km.model, spec)
            with torch.no_grad():
                scan[lv] = float(gaussian_nll(out(km.data[0]), km.data[1]))
        with torch.no_grad():
            base = float(gaussian_nll(km.model(km.data[0]), km.data[1]))
        passing = [lv for lv, v in scan.items() if v - base <= eps]
        assert res.n_q == min(passing), (scheme, res.levels)
        assert res.loss_at_n_q - res.loss_base <= eps
        assert res.n_q == 1 or scan[res.n_q - 1] - base > eps
        assert len(res.levels) <= 2 + math.ceil(math.log2(top))  # bisection, not a scan
        assert res.valid == (not res.warnings)
    tight = critical_compression(km.model, km.loss_fn, km.data, scheme="rtn-channel", epsilon=1e-6,
                                 max_level=2)
    assert tight.n_q is None and tight.warnings and not tight.valid


def test_two_part_code_and_redundancy() -> None:
    km = make_linear_regression(8, 2, n=2000, seed=0)
    code = two_part_code_length(km.model, km.loss_fn, km.data, scheme="rtn-channel", level=6)
    assert code.total_bits == pytest.approx(code.model_bits + code.data_bits)
    assert code.data_bits == pytest.approx(2000 * code.loss / math.log(2))
    coarse = two_part_code_length(km.model, km.loss_fn, km.data, scheme="rtn-channel", level=1)
    assert coarse.model_bits < code.model_bits and coarse.data_bits > code.data_bits
    assert asymptotic_redundancy(0.5, 1024) == pytest.approx(5.0)
    n = 10_000
    assert asymptotic_redundancy(2.0, n, multiplicity=2, unit="nats") == pytest.approx(
        2 * math.log(n) - math.log(math.log(n)))
    with pytest.raises(ConfigError):
        asymptotic_redundancy(1.0, 2)


def test_bad_input() -> None:
    km = make_linear_regression(4, 2, n=200, seed=0)
    with pytest.raises(ConfigError, match="did you mean 'rtn-channel'"):
        critical_compression(km.model, km.loss_fn, km.data, scheme="rtn-chanel", epsilon=0.1)
    with pytest.raises(ConfigError, match="epsilon"):
        critical_compression(km.model, km.loss_fn, km.data, epsilon=0.0)
    with pytest.raises(ConfigError, match="bits"):
        CompressionSpec("rtn-tensor", 17)
    with pytest.raises(ConfigError, match="no weight matrices"):
        compress_model(nn.Sequential(), CompressionSpec("rtn-tensor", 4))


def test_contract(result_contract) -> None:  # type: ignore[no-untyped-def]
    km = make_linear_regression(4, 2, n=200, seed=0)
    res = critical_compression(km.model, km.loss_fn, km.data, scheme="rtn-group", epsilon=0.01,
                               group_size=2)
    result_contract(res)
    d = res.to_dict()
    for key in ("n_q", "scheme", "epsilon", "loss_base", "loss_at_n_q"):
        assert key in d
    assert CompressionResult.from_dict(d).n_q == res.n_q
    code = two_part_code_length(km.model, km.loss_fn, km.data, scheme="svd", level=1)
    result_contract(code)
    assert TwoPartCode.from_dict(code.to_dict()) == code
