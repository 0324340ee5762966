"""The ensemble forward (C transformers at once) computes what C separate forwards compute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from occamlab.train import ModelConfig, Transformer
from occamlab.train._ensemble import causal_attention, ensemble_linear


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _members(model: Transformer, c: int, seed: int) -> dict[str, torch.Tensor]:
    """C different weight settings near the model's: (C, *shape) leaves."""
    g = _gen(seed)
    return {
        k: (p.detach().unsqueeze(0) + 0.05 * torch.randn(c, *p.shape, generator=g))
        .requires_grad_(True)
        for k, p in model.named_parameters()
    }


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(vocab_size=11, context=16, d_model=16, n_layer=1, n_head=2),
        ModelConfig(vocab_size=7, context=12, d_model=24, n_layer=2, n_head=3, d_mlp=40,
                    tie_embeddings=False),
        # a context above the materialized-scores limit: the SDPA path
        ModelConfig(vocab_size=5, context=80, d_model=8, n_layer=1, n_head=2),
    ],
)
def test_ensemble_forward_matches_separate_forwards(cfg: ModelConfig) -> None:
    model = Transformer(cfg, seed=3)
    c, b, t = 3, 4, cfg.context - 1  # T below the context: the position slice
    params = _members(model, c, 1)
    idx = torch.randint(0, cfg.vocab_size, (c, b, t), generator=_gen(2))
    tgt = torch.randint(0, cfg.vocab_size, (c, b, t), generator=_gen(4))
    out = model.ensemble_forward(params, idx)
    assert out.shape == (c, b, t, cfg.vocab_size)
    losses = torch.stack([F.cross_entropy(out[i].reshape(-1, cfg.vocab_size), tgt[i].reshape(-1))
                          for i in range(c)])
    grads = torch.autograd.grad(losses.sum(), list(params.values()))
    for i in range(c):
        p_i = {k: v[i].detach().requires_grad_(True) for k, v in params.items()}
        ref = functional_call(model, p_i, (idx[i],))
        assert (out[i] - ref).abs().max().item() <= 2e-5 * ref.abs().max().item()
        loss = F.cross_entropy(ref.reshape(-1, cfg.vocab_size), tgt[i].reshape(-1))
        assert abs(losses[i].item() - loss.item()) <= 1e-6 * loss.item()
        ref_g = torch.autograd.grad(loss, list(p_i.values()))
        for name, got, want in zip(params, grads, ref_g, strict=True):
            scale = want.abs().max().item()
            err = (got[i] - want).abs().max().item()
            assert err <= 1e-4 * scale + 1e-9, f"{name}: {err} against {scale}"


def test_members_do_not_depend_on_their_grouping() -> None:
    """Running chains 0-1 and 2-3 separately gives the same bits as all four together (the
    sampler's per-chain numbers must not depend on its thread count)."""
    cfg = ModelConfig(vocab_size=9, context=10, d_model=16, n_layer=2, n_head=2)
    model = Transformer(cfg, seed=0)
    params = _members(model, 4, 5)
    idx = torch.randint(0, 9, (4, 6, 10), generator=_gen(6))

    def run(a: int, b: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = model.ensemble_forward({k: v[a:b] for k, v in params.items()}, idx[a:b])
        return out.detach(), list(torch.autograd.grad(out.square().sum(), list(params.values())))

    o4, g4 = run(0, 4)
    o01, g01 = run(0, 2)
    o23, g23 = run(2, 4)
    assert torch.equal(o4, torch.cat([o01, o23]))
    for a, b01, b23 in zip(g4, g01, g23, strict=True):
        assert torch.equal(a[:2], b01[:2]) and torch.equal(a[2:], b23[2:])


def test_ensemble_forward_rejects_bad_input() -> None:
    cfg = ModelConfig(vocab_size=5, context=8, d_model=8, n_layer=1, n_head=2)
    model = Transformer(cfg, seed=0)
    params = _members(model, 2, 0)
    with pytest.raises(KeyError, match="wpe.weight"):
        model.ensemble_forward({k: v for k, v in params.items() if k != "wpe.weight"},
                               torch.zeros(2, 3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(C, B, T\)"):
        model.ensemble_forward(params, torch.zeros(3, 8, dtype=torch.long))
    with pytest.raises(IndexError, match=r"\[0, 5\), got values in \[0, 5\]"):
        model.ensemble_forward(params, torch.full((2, 3, 8), 5, dtype=torch.long).tril_())
    with pytest.raises(ValueError, match="exceeds the model's context"):
        model.ensemble_forward(params, torch.zeros(2, 3, 9, dtype=torch.long))


def test_kernels_match_torch() -> None:
    q, k, v = (torch.randn(2, 3, 13, 8, generator=_gen(i)).requires_grad_(True) for i in (2, 3, 4))
    ours = causal_attention(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (ours - ref).abs().max().item() <= 1e-5
    gy = torch.randn(ours.shape, generator=_gen(5))
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), gy),
                    torch.autograd.grad(ref, (q, k, v), gy), strict=True):
        assert (a - b).abs().max().item() <= 1e-5

    xs = torch.randn(3, 20, 6, generator=_gen(6))
    w = torch.randn(3, 4, 6, generator=_gen(7))
    bias = torch.randn(3, 4, generator=_gen(8))
    y = ensemble_linear(xs, w, bias)
    for i in range(3):
        assert torch.allclose(y[i], F.linear(xs[i], w[i], bias[i]), atol=1e-6)
    assert torch.allclose(ensemble_linear(xs, w)[1], F.linear(xs[1], w[1]), atol=1e-6)
