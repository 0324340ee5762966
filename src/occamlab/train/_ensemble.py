"""Kernels for an *ensemble* of C transformers of one architecture evaluated in one pass.

Every parameter carries a leading ensemble axis ``C`` (e.g. the C SGLD chains of
``occamlab.slt``, each at its own weights), activations are ``(C, N, features)``. Each operation
runs once for the whole ensemble instead of once per member, which is what makes a small model
cheap: below about 10^5 parameters a forward and backward pass is mostly per-operation overhead.

The pieces have hand-written backward passes that allocate few temporaries (on a CPU, every
freshly allocated large tensor costs page faults):

* :func:`ensemble_linear` -- ``x[c] W[c]^T + b[c]`` as one batched product (``bmm``; one oneDNN
  call per member measured no faster in the sampler);
* :func:`gelu_tanh` -- GPT-2's tanh-approximate GELU, written as ``x sigmoid(2u)`` (the same
  function: ``(1 + tanh u) / 2 = sigmoid(2u)``), whose sigmoid is a vectorized kernel (torch's
  ``tanh`` is not, on this CPU); above a million elements torch's one-pass kernel;
* :func:`causal_attention` -- softmax attention for short contexts (scores materialized, the
  softmax through ``exp2``); longer contexts use ``scaled_dot_product_attention``.

All of them agree with the single-model layers to float32 rounding (tests/train/test_ensemble.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._kernels import _transformed

__all__ = ["causal_attention", "ensemble_linear", "gelu_tanh"]

_ATTENTION_MAX_T = 64  # scores (N, T, T) materialized up to here; SDPA beyond
# the sigmoid GELU makes several passes over memory: faster than torch's one-pass tanh kernel up
# to about a million elements (1.3-1.7x at 2.6e5-1e6), slower from 4e6 (0.66x at 2 threads)
_GELU_MAX_NUMEL = 1 << 20
_LOG2E = 1.4426950408889634
_K = math.sqrt(2.0 / math.pi)
_A, _B = 2.0 * _K, 2.0 * _K * 0.044715  # sigmoid(x (A + B x^2)) = (1 + tanh(u)) / 2


def ensemble_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x[c] W[c]^T + b[c]``: ``x`` (C, N, i), ``weight`` (C, o, i), ``bias`` (C, o) -> (C, N, o)."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class _GeluTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        s = x * x
        s.mul_(_B).add_(_A).mul_(x).sigmoid_()  # sigmoid(2u) = (1 + tanh u) / 2
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> Any:  # type: ignore[override]
        x, s = ctx.saved_tensors
        du = x * x  # d(2u)/dx = A + 3 B x^2
        du.mul_(3.0 * _B).add_(_A)
        r = s * s
        torch.sub(s, r, out=r)  # s (1 - s)
        # d/dx [x s] = s + x s (1 - s) d(2u)/dx
        return r.mul_(x).mul_(du).add_(s).mul_(g)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, ``x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2``, as ``F.gelu(tanh)``."""
    if _transformed() or x.dtype != torch.float32 or x.numel() > _GELU_MAX_NUMEL:
        return F.gelu(x, approximate="tanh")
    y: torch.Tensor = _GeluTanh.apply(x)
    return y


_MASKS: dict[tuple[int, torch.dtype], torch.Tensor] = {}


def _causal_mask(t: int, dtype: torch.dtype) -> torch.Tensor:
    m = _MASKS.get((t, dtype))
    if m is None:
        m = _MASKS[(t, dtype)] = torch.full((t, t), float("-inf"), dtype=dtype).triu_(1)
    return m


class _CausalAttention(torch.autograd.Function):
    """softmax(q k^T scale + causal mask) v over (N, T, hd) batches."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float
    ) -> torch.Tensor:
        # scores in log2 units, so that the softmax's exponential is exp2 (a fast kernel)
        a = torch.baddbmm(_causal_mask(q.shape[1], q.dtype), q, k.transpose(1, 2),
                          alpha=scale * _LOG2E)
        a.sub_(a.amax(-1, keepdim=True)).exp2_()
        a.div_(a.sum(-1, keepdim=True))
        ctx.save_for_backward(q, k, v, a)
        ctx.scale = scale
        return torch.bmm(a, v)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> Any:  # type: ignore[override]
        q, k, v, a = ctx.saved_tensors
        g = g.contiguous()
        dv = torch.bmm(a.transpose(1, 2), g)
        ds = torch.bmm(g, v.transpose(1, 2))  # d loss / d a
        ds.sub_((ds * a).sum(-1, keepdim=True)).mul_(a)  # through the softmax
        dq = torch.bmm(ds, k).mul_(ctx.scale)
        dk = torch.bmm(ds.transpose(1, 2), q).mul_(ctx.scale)
        return dq, dk, dv, None


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal softmax attention over the last two axes of ``(..., T, hd)`` tensors."""
    t, hd = q.shape[-2], q.shape[-1]
    if t > _ATTENTION_MAX_T or _transformed() or q.dtype != torch.float32:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    lead = q.shape[:-2]
    y: torch.Tensor = _CausalAttention.apply(
        q.reshape(-1, t, hd), k.reshape(-1, t, hd), v.reshape(-1, t, hd), 1.0 / math.sqrt(hd)
    )
    return y.view(*lead, t, hd)
