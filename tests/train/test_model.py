"""The transformer: exact parameter counts, FLOPs against torch's counter, causality, determinism."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from occamlab.errors import ConfigError
from occamlab.train import (
    ModelConfig,
    Transformer,
    _kernels,
    flops_per_token,
    matmul_backend,
    n_params,
    n_params_non_embedding,
)

SHAPES = [
    ModelConfig(vocab_size=256, context=64, d_model=16, n_layer=2, n_head=2),
    ModelConfig(vocab_size=50, context=16, d_model=24, n_layer=3, n_head=3, d_mlp=40),
    ModelConfig(vocab_size=3, context=8, d_model=8, n_layer=1, n_head=1, tie_embeddings=False),
]


@pytest.mark.parametrize("cfg", SHAPES)
def test_parameter_counts_are_exact(cfg: ModelConfig) -> None:
    model = Transformer(cfg, seed=0)
    total = sum(p.numel() for p in model.parameters())
    assert n_params(cfg) == total
    emb = model.wte.weight.numel() + model.wpe.weight.numel()
    if model.head is not None:
        emb += model.head.weight.numel()
    assert n_params_non_embedding(cfg) == total - emb


def test_non_embedding_count_matches_kaplan_closed_form() -> None:
    # d_mlp = 4d with biases: N = L (12 d^2 + 13 d) + 2 d
    for d, L in [(16, 2), (64, 4), (128, 6)]:
        cfg = ModelConfig(d_model=d, n_layer=L, n_head=4)
        assert n_params_non_embedding(cfg) == L * (12 * d * d + 13 * d) + 2 * d


def _onednn_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:  # type: ignore[no-untyped-def]
    # mkldnn._linear_pointwise(x (m, k), w (n, k), ...) = x w^T: 2 m n k
    return 2 * x_shape[0] * w_shape[0] * x_shape[1]


def _counter() -> FlopCounterMode:
    mapping = {}
    if matmul_backend() == "onednn":
        mapping[torch.ops.mkldnn._linear_pointwise] = _onednn_flops
    return FlopCounterMode(display=False, custom_mapping=mapping)


@pytest.mark.parametrize("backend", ["onednn", "torch"])
@pytest.mark.parametrize("cfg", SHAPES[:2])
def test_flops_per_token_match_torch_counter(
    cfg: ModelConfig, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "torch":
        monkeypatch.setattr(_kernels, "_LP", None)
    elif matmul_backend() != "onednn":
        pytest.skip("oneDNN's matmul is not available in this torch build")
    model = Transformer(cfg, seed=0)
    x = torch.zeros(2, cfg.context, dtype=torch.long)
    n_tokens = x.numel()
    # the math backend exposes the attention matmuls to the counter
    with sdpa_kernel(SDPBackend.MATH), _counter() as fwd:
        model(x)
    assert fwd.get_total_flops() == flops_per_token(cfg, training=False) * n_tokens
    with sdpa_kernel(SDPBackend.MATH), _counter() as both:
        model(x).sum().backward()
    assert both.get_total_flops() == flops_per_token(cfg) * n_tokens


def test_forward_shape_and_causality() -> None:
    cfg = SHAPES[1]
    model = Transformer(cfg, seed=1).eval()
    x = torch.randint(0, cfg.vocab_size, (3, cfg.context), generator=torch.Generator().manual_seed(0))
    logits = model(x)
    assert logits.shape == (3, cfg.context, cfg.vocab_size)
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % cfg.vocab_size  # change the future only
    assert torch.allclose(model(y)[:, :10], logits[:, :10], atol=1e-6)
    assert not torch.allclose(model(y)[:, 10:], logits[:, 10:])
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(1, cfg.context + 1, dtype=torch.long))


def test_initialisation_is_seeded_and_leaves_global_rng_alone() -> None:
    cfg = SHAPES[0]
    state = torch.random.get_rng_state()
    a, b, c = Transformer(cfg, seed=5), Transformer(cfg, seed=5), Transformer(cfg, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.wte.weight, c.wte.weight)
    # initial loss of a fresh model is close to log V (uniform prediction)
    x = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(1))
    assert abs(a.loss(x, y).item() - torch.log(torch.tensor(256.0)).item()) < 0.05


@pytest.mark.parametrize("bad", [-1, None, 0.5, True, "0"])
def test_seed_must_be_a_non_negative_integer(bad) -> None:  # type: ignore[no-untyped-def]
    cfg = SHAPES[0]
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        Transformer(cfg, seed=bad)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        Transformer(cfg, init=False).reset_parameters(seed=bad)


def test_default_seed_is_zero_and_init_false_skips_initialisation() -> None:
    cfg = SHAPES[0]
    a, b = Transformer(cfg), Transformer(cfg, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    state = torch.random.get_rng_state()
    blank = Transformer(cfg, init=False)  # for load_state_dict (load_checkpoint uses it)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not torch.equal(blank.wte.weight, a.wte.weight)
    blank.load_state_dict(a.state_dict())
    blank.reset_parameters()
    assert all(torch.equal(p, q) for p, q in zip(blank.parameters(), a.parameters(), strict=True))
