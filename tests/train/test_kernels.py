"""oneDNN's matrix products compute what torch's F.linear computes (to float32 rounding)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from occamlab.errors import ConfigError
from occamlab.train import (
    ModelConfig,
    Transformer,
    _kernels,
    matmul_backend,
    set_matmul_backend,
)

needs_onednn = pytest.mark.skipif(
    matmul_backend() != "onednn", reason="oneDNN's matmul is not available in this torch build"
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@needs_onednn
@pytest.mark.parametrize(
    ("lead", "d_in", "d_out", "bias"),
    [((64,), 16, 48, True), ((4, 32), 64, 16, True), ((3, 5, 7), 40, 24, False)],
)
def test_onednn_linear_matches_f_linear(lead, d_in, d_out, bias) -> None:  # type: ignore[no-untyped-def]
    # d_in = 16 takes the MKL path for dW, 40 and 64 oneDNN's: both are checked
    x = torch.randn(*lead, d_in, generator=_gen(0), requires_grad=True)
    w = torch.randn(d_out, d_in, generator=_gen(1), requires_grad=True)
    b = torch.randn(d_out, generator=_gen(2), requires_grad=True) if bias else None
    g = torch.randn(*lead, d_out, generator=_gen(3))
    ours = _kernels.linear(x, w, b)
    ref = F.linear(x, w, b)
    assert ours.shape == ref.shape
    scale = ref.abs().max().item()
    assert (ours - ref).abs().max().item() <= 1e-6 * scale
    inputs = [x, w] + ([b] if b is not None else [])
    got = torch.autograd.grad(ours, inputs, g)
    want = torch.autograd.grad(ref, inputs, g)
    for a, e in zip(got, want, strict=True):
        assert a.shape == e.shape
        assert (a - e).abs().max().item() <= 1e-6 * e.abs().max().item()
    # a non-contiguous input (every second column) gives the same product
    xs = torch.randn(*lead, 2 * d_in, generator=_gen(4))[..., ::2]
    assert not xs.is_contiguous()
    want_s = F.linear(xs, w, b)
    assert (_kernels.linear(xs, w, b) - want_s).abs().max().item() <= 1e-6 * want_s.abs().max()


def test_switch_is_an_explicit_api() -> None:
    try:
        assert set_matmul_backend("torch") == "torch" == matmul_backend()
        x, w = torch.randn(5, 3, generator=_gen(0)), torch.randn(2, 3, generator=_gen(1))
        assert torch.equal(_kernels.linear(x, w), F.linear(x, w))  # the fallback is F.linear
        with pytest.raises(ConfigError, match="'onednn', 'torch'"):
            set_matmul_backend("mkl")
        assert matmul_backend() == "torch"  # a refused switch changes nothing
    finally:
        back = set_matmul_backend("onednn")
    assert back == matmul_backend() == ("onednn" if _kernels._probe_onednn() else "torch")


def test_import_computes_nothing_and_reads_no_environment() -> None:
    # a fresh interpreter: importing occamlab.train leaves the operator unresolved (no matrix
    # product at import), and the old environment switch is not read
    code = (
        "from occamlab.train import _kernels, matmul_backend\n"
        "assert _kernels._LP is _kernels._UNRESOLVED\n"
        "print(matmul_backend(), _kernels._probe_onednn() is not None)\n"
    )
    env = dict(os.environ, OCCAMLAB_MATMUL="torch", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["onednn", "True"] or out == ["torch", "False"]


@needs_onednn
def test_model_on_onednn_equals_model_on_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ModelConfig(vocab_size=40, context=16, d_model=32, n_layer=2, n_head=4)
    model = Transformer(cfg, seed=3)
    x = torch.randint(0, 40, (4, 16), generator=_gen(0))
    y = torch.randint(0, 40, (4, 16), generator=_gen(1))
    calls = []
    op = _kernels._op()

    def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(tuple(args[0].shape))
        return op(*args)

    monkeypatch.setattr(_kernels, "_LP", counted)
    loss = model.loss(x, y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    # 4 linears per block, each: forward, dx and (d_in >= 32) dW; the unembedding is fused
    # with the cross-entropy (linear_cross_entropy)
    assert len(calls) == 3 * 4 * 2
    monkeypatch.setattr(_kernels, "_LP", None)
    ref_logits = model(x)
    ref = F.cross_entropy(ref_logits.reshape(-1, 40), y.reshape(-1))
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert abs(loss.item() - ref.item()) <= 1e-6
    for a, e in zip(grads, ref_grads, strict=True):
        assert (a - e).abs().max().item() <= 1e-5 * max(e.abs().max().item(), 1e-3)


def test_torch_func_transforms_fall_back_to_f_linear() -> None:
    # occamlab.slt runs SGLD chains through vmap(grad(functional_call(model))): it must work
    from torch.func import functional_call, grad, vmap

    cfg = ModelConfig(vocab_size=16, context=8, d_model=32, n_layer=1, n_head=2)
    model = Transformer(cfg, seed=0)
    x = torch.randint(0, 16, (4, 8), generator=_gen(0))
    y = torch.randint(0, 16, (4, 8), generator=_gen(1))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):  # type: ignore[no-untyped-def]
        return F.cross_entropy(functional_call(model, p, (x,)).reshape(-1, 16), y.reshape(-1))

    stacked = {k: torch.stack([v, 2 * v]) for k, v in params.items()}
    with pytest.warns(UserWarning, match="batching rule"):  # torch's note about SDPA
        per_chain = vmap(grad(loss), in_dims=(0, None, None))(stacked, x, y)
    direct = torch.autograd.grad(model.loss(x, y), list(model.parameters()))
    for (name, g), d in zip(grad(loss)(params, x, y).items(), direct, strict=True):
        assert (g - d).abs().max().item() <= 1e-5 * max(d.abs().max().item(), 1e-3), name
        assert torch.allclose(per_chain[name][0], g, atol=1e-6)


@pytest.mark.parametrize(
    ("n", "vocab", "d", "need_h", "need_w"),
    [(1300, 256, 16, True, True), (37, 7, 8, True, True), (700, 3000, 24, False, True),
     (700, 300, 24, True, False)],
)
def test_linear_cross_entropy_matches_torch(n, vocab, d, need_h, need_w) -> None:  # type: ignore[no-untyped-def]
    # 1300 rows of a 256-word vocabulary are three chunks (512, 512, 276); 3000 words: 64-row chunks
    h = torch.randn(n, d, generator=_gen(0)).requires_grad_(need_h)
    w = (0.3 * torch.randn(vocab, d, generator=_gen(1))).requires_grad_(need_w)
    t = torch.randint(0, vocab, (n,), generator=_gen(2))
    ours = _kernels.linear_cross_entropy(h, w, t)
    ref = F.cross_entropy(F.linear(h, w), t)
    assert abs(ours.item() - ref.item()) <= 2e-6 * ref.item()
    inputs = [x for x in (h, w) if x.requires_grad]
    got = torch.autograd.grad(3.0 * ours, inputs)  # the incoming gradient scales the result
    want = torch.autograd.grad(3.0 * ref, inputs)
    for a, e in zip(got, want, strict=True):
        assert (a - e).abs().max().item() <= 1e-5 * e.abs().max().item()
    with torch.no_grad():  # the plain path
        assert abs(_kernels.linear_cross_entropy(h, w, t).item() - ref.item()) <= 2e-6 * ref.item()


def test_linear_cross_entropy_rejects_out_of_range_targets() -> None:
    h = torch.randn(10, 4, generator=_gen(0), requires_grad=True)
    w = torch.randn(5, 4, generator=_gen(1), requires_grad=True)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        _kernels.linear_cross_entropy(h, w, torch.full((10,), 5))
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        _kernels.linear_cross_entropy(h, w, torch.full((10,), -100))
