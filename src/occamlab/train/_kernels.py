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
``set_matmul_backend("torch")`` turns it off, ``set_matmul_backend("onednn")`` (the default) back
on where the oneDNN operator exists; :func:`matmul_backend` says which is used. Importing this
module computes nothing: the operator is looked up and self-checked on first use.

:func:`linear_cross_entropy` fuses the unembedding with the cross-entropy for training: it walks
the tokens in chunks whose logits fit in the L2 cache and computes each chunk's loss *and*
gradient (``softmax - onehot``) in the forward pass, so the ``tokens x vocabulary`` logits are
never materialized (each such 4 MB tensor costs page faults on every step). At 10^4 parameters
(context 128, vocabulary 256) this made a whole training step 10-15% faster (docs/train.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from occamlab.errors import ConfigError

__all__ = [
    "BACKENDS",
    "Linear",
    "linear",
    "linear_cross_entropy",
    "matmul_backend",
    "set_matmul_backend",
]


BACKENDS = ("onednn", "torch")
_UNRESOLVED: Any = object()  # the oneDNN operator is looked up (and checked) on first use
_LP: Any = _UNRESOLVED  # the operator, None for torch's F.linear, or _UNRESOLVED


def _probe_onednn() -> Any:
    """oneDNN's linear operator if this torch build has one that computes ``x W^T + b``."""
    if not torch.backends.mkldnn.is_available():
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


def _op() -> Any:
    """The operator :class:`Linear` calls (``None``: ``F.linear``), resolved once and cached."""
    global _LP
    if _LP is _UNRESOLVED:
        _LP = _probe_onednn()
    return _LP


def set_matmul_backend(backend: str) -> str:
    """Choose the library that computes the model's matrix products, for this process.

    Parameters
    ----------
    backend : {"onednn", "torch"}
        ``"onednn"`` (the default): oneDNN's float32 matmul where this torch build has a working
        operator (checked once, on first use), else torch's; ``"torch"``: ``F.linear`` (MKL or
        the build's BLAS), the reference path.

    Returns
    -------
    str
        The backend now in use, as :func:`matmul_backend` reports it (``"torch"`` when oneDNN
        was asked for but is not available).

    Raises
    ------
    ConfigError
        ``backend`` is not one of :data:`BACKENDS`.

    Examples
    --------
    >>> from occamlab.train import matmul_backend, set_matmul_backend
    >>> set_matmul_backend("torch")
    'torch'
    >>> set_matmul_backend("onednn") == matmul_backend()
    True
    """
    global _LP
    if backend not in BACKENDS:
        raise ConfigError(
            f"matmul backend {backend!r} is not one of {', '.join(map(repr, BACKENDS))}"
        )
    _LP = _UNRESOLVED if backend == "onednn" else None
    return matmul_backend()


def matmul_backend() -> str:
    """``"onednn"`` when :class:`Linear` uses oneDNN's matmul, else ``"torch"`` (MKL/BLAS)."""
    return "onednn" if _op() is not None else "torch"


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
        _op() is not None
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


_CE_CHUNK_BYTES = 1 << 19  # logits of one chunk: 512 KB, inside a core's L2 cache


class _LinearCrossEntropy(torch.autograd.Function):
    """``mean_i CE(h_i W^T, t_i)`` with its gradient computed chunk by chunk in the forward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
        need_h: bool, need_w: bool,
    ) -> torch.Tensor:
        n, v = h.shape[0], weight.shape[0]
        chunk = max(64, _CE_CHUNK_BYTES // (4 * v))
        gh = torch.empty_like(h) if need_h else None
        gw = torch.zeros_like(weight) if need_w else None
        buf = torch.empty(min(chunk, n), v, dtype=h.dtype)
        total = torch.zeros((), dtype=torch.float64)
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            b, hc, tc = buf[: e - s], h[s:e], targets[s:e, None]
            torch.mm(hc, weight.t(), out=b)  # logits
            b.sub_(b.amax(1, keepdim=True)).exp_()  # exp(logit - max)
            z = b.sum(1, keepdim=True)
            # CE = log sum_j exp(l_j - max) - (l_t - max)
            total += (z.log() - b.gather(1, tc).log()).sum(dtype=torch.float64)
            b.div_(z).scatter_add_(1, tc, torch.full(tc.shape, -1.0, dtype=b.dtype))  # p - onehot
            if gh is not None:
                torch.mm(b, weight, out=gh[s:e])
            if gw is not None:
                gw.addmm_(b.t(), hc)
        ctx.save_for_backward(gh, gw)
        ctx.n = n
        return (total / n).to(h.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> Any:  # type: ignore[override]
        gh, gw = ctx.saved_tensors
        scale = g / ctx.n
        return (
            gh * scale if gh is not None else None,
            gw * scale if gw is not None else None,
            None, None, None,
        )


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy (nats) of the logits ``h W^T`` against ``targets``.

    ``h`` (..., d), ``weight`` (V, d), ``targets`` (...) integer class ids in ``[0, V)``. Equal to
    ``F.cross_entropy(F.linear(h, weight).reshape(-1, V), targets.reshape(-1))`` up to float
    rounding (the sum is accumulated in float64). Without gradients, under torch.func transforms
    or torch.compile, and for other dtypes or devices it is computed exactly that way.
    """
    need_h = h.requires_grad and torch.is_grad_enabled()
    need_w = weight.requires_grad and torch.is_grad_enabled()
    flat_h, flat_t = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    if (
        not (need_h or need_w)
        or not _fast_ok(h, weight)
        or _transformed()
        or flat_t.dtype != torch.int64
        or flat_t.numel() == 0
    ):
        return F.cross_entropy(F.linear(flat_h, weight), flat_t)
    lo, hi = (int(v) for v in torch.aminmax(flat_t))
    if lo < 0 or hi >= weight.shape[0]:
        raise IndexError(
            f"targets must be class ids in [0, {weight.shape[0]}), got values in [{lo}, {hi}]"
        )
    out: torch.Tensor = _LinearCrossEntropy.apply(flat_h, weight, flat_t, need_h, need_w)
    return out
