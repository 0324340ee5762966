"""Kernels for an *ensemble* of C transformers of one architecture evaluated in one pass.

Every parameter carries a leading ensemble axis ``C`` (e.g. the C SGLD chains of
``occamlab.slt``, each at its own weights), activations are ``(C, N, features)``. Each operation
runs once for the whole ensemble instead of once per member, which is what makes a small model
cheap: below about 10^5 parameters a forward and backward pass is mostly per-operation overhead.

* :func:`ensemble_linear` -- ``x[c] W[c]^T + b[c]`` as one batched product (``bmm``; one oneDNN
  call per member measured no faster in the sampler);
* :func:`causal_attention` -- softmax attention for short contexts (scores materialized, the
  softmax through ``exp2``, a hand-written backward pass that works in place); longer contexts
  use ``scaled_dot_product_attention``. The model's own forward uses it too.

Both agree with torch's layers to float32 rounding (tests/train/test_ensemble.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from occamlab._units import BITS_PER_NAT

from ._kernels import _transformed

__all__ = ["causal_attention", "ensemble_linear"]

_ATTENTION_MAX_T = 64  # scores (N, T, T) materialized up to here; SDPA beyond
_LOG2E = BITS_PER_NAT  # log2(e) = 1 / ln 2: scores times this are in bits, exp(s) = exp2(s log2 e)


def ensemble_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x[c] W[c]^T + b[c]``: ``x`` (C, N, i), ``weight`` (C, o, i), ``bias`` (C, o) -> (C, N, o)."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


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
    if (
        not 0 < t <= _ATTENTION_MAX_T
        or q.dtype != torch.float32
        or q.device.type != "cpu"
        or _transformed()
    ):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    lead = q.shape[:-2]
    y: torch.Tensor = _CausalAttention.apply(
        q.reshape(-1, t, hd), k.reshape(-1, t, hd), v.reshape(-1, t, hd), 1.0 / math.sqrt(hd)
    )
    return y.view(*lead, t, hd)
