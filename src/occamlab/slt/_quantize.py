"""Round-to-nearest fake quantization and truncated-SVD low rank, applied to a copy of a model.

Round-to-nearest (RTN) at ``k`` bits, asymmetric (min-max) by default: for each block of weights
(the whole tensor, one output channel = one row, or a group of ``group_size`` consecutive weights
of a row) with range ``[lo, hi]``::

    s = (hi - lo) / (2^k - 1),   z = round(-lo / s),   q = clamp(round(x / s) + z, 0, 2^k - 1),
    x_hat = (q - z) s.

Symmetric: ``s = max|x| / (2^(k-1) - 1)``, ``q = clamp(round(x / s), -(2^(k-1) - 1), 2^(k-1) - 1)``,
``x_hat = q s`` (needs ``k >= 2``). Only weights with at least two dimensions are compressed
(biases and norms stay in full precision, as is usual); a higher-dimensional weight is treated as
``(shape[0], -1)``. Truncated SVD keeps the ``r`` largest singular triplets of every matrix.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from occamlab.errors import ConfigError, suggest

__all__ = ["SCHEMES", "CompressionSpec", "quantize_tensor", "low_rank_tensor", "compress_model",
           "compressed_bits"]

SCHEMES = ("rtn-tensor", "rtn-channel", "rtn-group", "svd")


@dataclass(frozen=True)
class CompressionSpec:
    """A compression protocol: scheme, its level (bits, or rank for ``svd``) and options."""

    scheme: str
    level: int
    group_size: int = 32
    symmetric: bool = False

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(
                f"unknown compression scheme {self.scheme!r}" + suggest(self.scheme, SCHEMES)
                + f"; allowed: {', '.join(SCHEMES)}"
            )
        if isinstance(self.level, bool) or not isinstance(self.level, int) or self.level < 1:
            raise ConfigError(f"compression level must be an integer >= 1, got {self.level!r}")
        if self.scheme != "svd" and self.level > 16:
            raise ConfigError(f"bits must be between 1 and 16, got {self.level}")
        if self.scheme != "svd" and self.symmetric and self.level < 2:
            raise ConfigError("symmetric quantization needs at least 2 bits")
        if self.group_size < 1:
            raise ConfigError(f"group_size must be >= 1, got {self.group_size}")


def _blocks(w: torch.Tensor, spec: CompressionSpec) -> tuple[torch.Tensor, int]:
    """View ``w`` as ``(blocks, block_len)`` for the scheme; returns the padding added."""
    m = w.reshape(w.shape[0], -1)
    if spec.scheme == "rtn-tensor":
        return m.reshape(1, -1), 0
    if spec.scheme == "rtn-channel":
        return m, 0
    g = spec.group_size
    pad = (-m.shape[1]) % g
    if pad:  # pad each row with its own last value so the range is unchanged
        m = torch.cat([m, m[:, -1:].expand(-1, pad)], dim=1)
    return m.reshape(-1, g), pad


def quantize_tensor(w: torch.Tensor, spec: CompressionSpec) -> torch.Tensor:
    """Round-to-nearest fake quantization of ``w`` (same shape and dtype)."""
    if spec.scheme == "svd":
        raise ConfigError("quantize_tensor takes an rtn-* scheme; use low_rank_tensor for svd")
    x = w.detach().double()
    blocks, pad = _blocks(x, spec)
    k = spec.level
    if spec.symmetric:
        qmax = 2 ** (k - 1) - 1
        s = blocks.abs().amax(dim=1, keepdim=True) / qmax
        s = torch.where(s > 0, s, torch.ones_like(s))
        out = torch.clamp(torch.round(blocks / s), -qmax, qmax) * s
    else:
        lo = blocks.amin(dim=1, keepdim=True)
        hi = blocks.amax(dim=1, keepdim=True)
        s = (hi - lo) / (2**k - 1)
        s = torch.where(s > 0, s, torch.ones_like(s))
        z = torch.round(-lo / s)
        q = torch.clamp(torch.round(blocks / s) + z, 0, 2**k - 1)
        out = (q - z) * s
        out = torch.where(hi > lo, out, blocks)  # constant block: exact
    m = x.reshape(x.shape[0], -1)
    out = out.reshape(m.shape[0], -1)[:, : m.shape[1]] if pad else out.reshape(m.shape)
    return out.reshape(w.shape).to(w.dtype)


def low_rank_tensor(w: torch.Tensor, rank: int) -> torch.Tensor:
    """Best rank-``rank`` approximation (Eckart-Young) of ``w`` viewed as ``(shape[0], -1)``."""
    m = w.detach().double().reshape(w.shape[0], -1)
    if rank >= min(m.shape):
        return w.detach().clone()
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    return ((u[:, :rank] * s[:rank]) @ vh[:rank]).reshape(w.shape).to(w.dtype)


def _targets(model: nn.Module) -> list[str]:
    return [k for k, p in model.named_parameters() if p.dim() >= 2]


def compress_model(model: nn.Module, spec: CompressionSpec) -> nn.Module:
    """A compressed deep copy of ``model`` (the original is not touched)."""
    out = copy.deepcopy(model)
    names = set(_targets(out))
    if not names:
        raise ConfigError("the model has no weight matrices (parameters with 2+ dimensions) to compress")
    with torch.no_grad():
        for k, p in out.named_parameters():
            if k in names:
                new = low_rank_tensor(p, spec.level) if spec.scheme == "svd" else quantize_tensor(p, spec)
                p.copy_(new)
    return out


def compressed_bits(model: nn.Module, spec: CompressionSpec, *, float_bits: int = 32) -> float:
    """Bits to store the model under ``spec``: the model part of a two-part code.

    RTN: ``k`` bits per compressed weight plus ``float_bits`` for each block's scale and (if
    asymmetric) ``k`` bits for its zero point; SVD: ``float_bits`` per stored factor entry
    ``r (rows + cols + 1)``; everything not compressed at ``float_bits`` each.
    """
    names = set(_targets(model))
    total = 0.0
    for k, p in model.named_parameters():
        if k not in names:
            total += float_bits * p.numel()
            continue
        rows = p.shape[0]
        cols = p.numel() // rows
        if spec.scheme == "svd":
            r = min(spec.level, rows, cols)
            total += float_bits * (r * (rows + cols + 1) if r < min(rows, cols) else p.numel())
            continue
        if spec.scheme == "rtn-tensor":
            n_blocks = 1
        elif spec.scheme == "rtn-channel":
            n_blocks = rows
        else:
            n_blocks = rows * math.ceil(cols / spec.group_size)
        per_block = float_bits + (0 if spec.symmetric else spec.level)
        total += spec.level * p.numel() + per_block * n_blocks
    return total
