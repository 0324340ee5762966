"""Transformer.residuals and generate: the residual stream is the forward pass's own, and sampling
draws from the model's distribution (a model with a known fixed distribution first)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occamlab.errors import ConfigError, DataError
from occamlab.train import ModelConfig, Transformer, generate
from occamlab.train._generate import _Cache


def _model(vocab: int = 3, context: int = 8, seed: int = 0, **kw) -> Transformer:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(vocab_size=vocab, context=context, d_model=8, n_layer=2, n_head=2, **kw)
    m = Transformer(cfg, seed=seed)
    with torch.no_grad():  # larger weights than the init, so the distribution depends on context
        for p in m.parameters():
            p.mul_(20.0) if p.dim() > 1 else None
    return m.eval()


def _fixed(p: list[float]) -> Transformer:
    """A model whose next-symbol law is ``p`` whatever the context: the final LayerNorm outputs
    its bias ``b`` (gain 0), and an untied head gives logits ``log p`` from ``b = e_0``."""
    V = len(p)
    m = Transformer(ModelConfig(vocab_size=V, context=4, d_model=V, n_layer=1, n_head=1,
                                tie_embeddings=False))
    with torch.no_grad():
        m.ln_f.weight.zero_()
        m.ln_f.bias.zero_()
        m.ln_f.bias[0] = 1.0
        assert m.head is not None
        m.head.weight.zero_()
        m.head.weight[:, 0] = torch.log(torch.tensor(p, dtype=torch.float32))
    return m.eval()


# ---- residuals -----------------------------------------------------------------------------
def test_residuals_are_the_forward_pass_stream() -> None:
    m = _model()
    idx = torch.randint(0, 3, (5, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        res = m.residuals(idx)
        assert len(res) == m.config.n_layer + 1
        assert all(tuple(r.shape) == (5, 8, 8) for r in res)
        assert torch.equal(res[0], m.wte(idx) + m.wpe.weight[:8])
        assert torch.equal(res[1], m.blocks[0](res[0]))
        assert torch.equal(m.ln_f(res[-1]), m.hidden(idx))  # exactly: the same operations
        logits = m(idx)
        assert torch.equal(logits, m(idx))
        assert torch.allclose(logits, m.ln_f(res[-1]) @ m.wte.weight.T, atol=1e-6)


def test_residuals_reject_a_window_longer_than_the_context() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        _model().residuals(torch.zeros(1, 9, dtype=torch.long))


# ---- generate: ground truth ------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_generate_draws_from_a_known_distribution(temperature: float) -> None:
    p = np.array([0.6, 0.3, 0.1])
    x = generate(_fixed(list(p)), 400, batch=50, seed=3, temperature=temperature)
    q = p ** (1 / temperature)
    q /= q.sum()
    freq = np.bincount(x.ravel(), minlength=3) / x.size
    se = np.sqrt(q * (1 - q) / x.size)
    assert np.all(np.abs(freq - q) < 4 * se), (freq, q)


def _reference(model: Transformer, length: int, batch: int, seed: int, keep: int
               ) -> np.ndarray:
    """The same windows, each draw from a full forward pass (no cache)."""
    rng = np.random.default_rng(seed)
    T, V = model.config.context, model.config.vocab_size
    out = list(rng.integers(V, size=(batch, 1)).T)
    start = 0  # first position of the current window
    with torch.no_grad():
        for t in range(1, length + 1):
            if t - start >= T + 1 or t == 1:
                start = max(0, t - keep)
            window = torch.from_numpy(np.stack(out[start:t], axis=1))
            probs = torch.softmax(model(window)[:, -1].double(), -1).numpy()
            cum = np.cumsum(probs, axis=1)
            cum[:, -1] = np.inf
            out.append((cum <= rng.random(batch)[:, None]).sum(axis=1))
    return np.stack(out[1:], axis=1)


@pytest.mark.parametrize("keep", [8, 5, 1])
def test_cached_windows_draw_what_full_passes_draw(keep: int) -> None:
    m = _model()
    got = generate(m, 40, batch=6, seed=11, min_context=keep)
    ref = _reference(m, 40, 6, 11, keep)
    assert np.array_equal(got, ref)
    assert len(np.unique(got)) == 3


def test_cache_steps_give_the_forward_pass_logits() -> None:
    m = _model()
    idx = torch.randint(0, 3, (4, 8), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = m(idx)
        c = _Cache(m)
        assert torch.allclose(c.feed(idx[:, :3]), full[:, 2], atol=1e-5)
        for j in range(3, 8):
            assert torch.allclose(c.feed(idx[:, j:j + 1]), full[:, j], atol=1e-5)


def test_generate_is_seeded_and_leaves_torch_rng_alone() -> None:
    m = _model()
    state = torch.random.get_rng_state()
    a = generate(m, 30, batch=4, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert np.array_equal(a, generate(m, 30, batch=4, seed=5))
    assert not np.array_equal(a, generate(m, 30, batch=4, seed=6))
    assert a.shape == (4, 30) and a.dtype == np.int64


def test_prompt_is_used_and_not_returned() -> None:
    m = _model()
    x = generate(m, 10, batch=2, seed=0, prompt=[0, 1, 2])
    assert x.shape == (2, 10)
    y = generate(m, 10, batch=2, seed=0, prompt=np.array([[0, 1, 2], [0, 1, 2]]))
    # one fewer uniform draw than without a prompt, the same draws afterwards
    assert np.array_equal(x, y)


@pytest.mark.parametrize("kw,err,needle", [
    ({"length": 0}, ConfigError, "length"), ({"batch": 0}, ConfigError, "batch"),
    ({"temperature": 0.0}, ConfigError, "temperature"),
    ({"temperature": math.nan}, ConfigError, "temperature"),
    ({"min_context": 0}, ConfigError, "min_context"),
    ({"min_context": 9}, ConfigError, "min_context"), ({"seed": -1}, ConfigError, "seed"),
    ({"prompt": [0, 3]}, DataError, "prompt ids"), ({"prompt": [[0], [1], [2]]}, DataError,
                                                    "shape"),
    ({"prompt": [0.5]}, DataError, "integer"),
])
def test_bad_arguments(kw: dict, err: type, needle: str) -> None:  # type: ignore[type-arg]
    args = {"length": 5, "batch": 2, **kw}
    with pytest.raises(err, match=needle):
        generate(_model(), args.pop("length"), **args)


def test_generate_needs_a_transformer() -> None:
    with pytest.raises(ConfigError, match="Transformer"):
        generate(torch.nn.Linear(2, 2), 5)  # type: ignore[arg-type]
