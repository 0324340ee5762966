"""Faster CPU matrix products for the same arithmetic: oneDNN instead of MKL's sgemm.

``torch.nn.functional.linear`` on a CPU calls MKL's ``sgemm``. On the AMD EPYC (AVX-512) machines
this project runs on, MKL reaches about 100 GFLOP/s per core (the AVX2 peak: it does not seem
to use its AVX-512 code on AMD processors), while oneDNN -- also shipped inside torch -- reaches
120-250 GFLOP/s on the same float32 products at the shapes trained here (docs/train.md). On an
Intel processor MKL's AVX-512 code would narrow that gap (not measured).
:class:`Linear` is an ``nn.Linear`` whose forward and backward use oneDNN's float32 matmul::

    y = x W^T + b,    dL/dx = g W,    dL/dW = g^T x,    dL/db = sum_rows g

(g = dL/dy). It is the same product in float32 (no reduced precision); only the summation
order differs, so results agree with ``F.linear`` to float rounding (about 1e-6 relative).
The environment variable ``OCCAMLAB_MATMUL=torch`` turns it off (``onednn`` or ``auto``, the
default, turn it on where the oneDNN operator exists); :func:`matmul_backend` says which is used.

A fused cross-entropy (softmax minus one-hot computed in one pass) and a chunked
unembedding + cross-entropy were measured too and were not faster inside a training step than
``F.cross_entropy``: the model keeps torch's.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["Linear", "linear", "matmul_backend"]


def _onednn_op() -> Any:
    choice = os.environ.get("OCCAMLAB_MATMUL", "auto").strip().lower()
    if choice == "torch" or not torch.backends.mkldnn.is_available():
        return None
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None:
        return None
    try:  # a tiny self-check: the operator runs and computes x W^T + b
        x, w, b = torch.ones(2, 3), torch.full((4, 3), 2.0), torch.ones(4)
        if not torch.equal(op(x, w, b, "none", [], None), torch.full((2, 4), 7.0)):
            return None
    except (RuntimeError, TypeError):
        return None
    return op


_LP = _onednn_op()


def matmul_backend() -> str:
    """``"onednn"`` when :class:`Linear` uses oneDNN's matmul, else ``"torch"`` (MKL/BLAS)."""
    return "onednn" if _LP is not None else "torch"


_GW_MIN_IN = 32  # measured: d_in = 16 is faster with MKL's transposed product


def _mm_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` through oneDNN (``a`` (m, k), ``b`` (n, k); either may be a strided view)."""
    return _LP(a, b, None, "none", [], None)  # type: ignore[misc]


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _LP(x, weight, bias, "none", [], None)  # type: ignore[misc]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> Any:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        g = g.contiguous()
        gx = _mm_nt(g, weight.t()) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            # oneDNN copies the transposed operands; that only pays for inputs of 32+ features
            gw = _mm_nt(g.t(), x.t()) if x.shape[1] >= _GW_MIN_IN else g.t().mm(x)
        gb = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def _transformed() -> bool:
    """Inside torch.func transforms (vmap, grad, jvp), forward-mode AD or torch.compile.

    The oneDNN operator has no batching, forward-mode or inductor rule, so there the layers
    use ``F.linear`` (e.g. the SGLD chains of ``occamlab.slt`` run under ``vmap``).
    """
    return (
        torch._C._functorch.peek_interpreter_stack() is not None
        or torch.autograd.forward_ad._current_level >= 0
        or torch.compiler.is_compiling()
    )


def _fast_ok(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        _LP is not None
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.device.type == "cpu"
        and weight.device.type == "cpu"
        and x.layout == torch.strided
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x W^T + b`` over the last axis of ``x``, through oneDNN when available."""
    if not _fast_ok(x, weight) or _transformed():
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    y = _OneDNNLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.view(*lead, weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
