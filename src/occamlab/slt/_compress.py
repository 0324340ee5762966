"""Critical compression threshold ``n_q`` and two-part code lengths (Urdshals et al. 2025).

``n_q`` is the most aggressive compression level (fewest bits, or lowest rank for ``svd``) whose
loss on the evaluation data stays within ``epsilon`` of the uncompressed loss::

    n_q = min { k : L(compress(w*, k)) - L(w*) <= epsilon },

found by bisection over the integer levels, which assumes the loss increase does not grow with
the level (every level tried is recorded, so a violation can be seen). The two-part code length
of data ``D_n`` under a compressed model is ``len(model) + n L_n(w_q) / ln 2`` bits (``L_n`` the mean
NLL in nats), and the asymptotic redundancy of the best two-part code is
``R_n = lambda log n - (m - 1) log log n + O(1)`` (Urdshals et al., arXiv:2510.12077).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.slt._backends import LossFn
from occamlab.slt._quantize import CompressionSpec, compress_model, compressed_bits
from occamlab.slt._sgld import as_tensors

__all__ = [
    "CompressionResult",
    "TwoPartCode",
    "evaluate_loss",
    "critical_compression",
    "two_part_code_length",
    "asymptotic_redundancy",
]

def evaluate_loss(model: nn.Module, loss_fn: LossFn, data: Any, *, chunk: int = 4096) -> float:
    """Mean loss over all examples of ``data`` (evaluated in chunks, weighted by chunk size)."""
    x, y = as_tensors(data)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            xb, yb = x[i : i + chunk], y[i : i + chunk]
            val = loss_fn(model(xb), yb)
            if not isinstance(val, torch.Tensor) or val.dim() != 0:
                raise ConfigError("loss_fn must return a scalar (0-dim tensor) mean over the batch")
            total += float(val) * xb.shape[0]
            count += xb.shape[0]
    return total / count


@dataclass(frozen=True)
class CompressionResult(Rendered):
    """The critical threshold ``n_q`` and every level evaluated on the way."""

    n_q: int | None
    scheme: str
    epsilon: float
    loss_base: float
    loss_at_n_q: float | None
    levels: tuple[tuple[int, float], ...]
    group_size: int
    symmetric: bool
    n: int
    warnings: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """The search passed its own checks: an ``n_q`` was found and the loss increase was
        monotone in the levels tried (``warnings`` is empty)."""
        return not self.warnings

    def _tables(self) -> list[Table]:
        unit = "rank" if self.scheme == "svd" else "bits"
        rows = [[lv, loss, loss - self.loss_base, "<- n_q" if lv == self.n_q else ""]
                for lv, loss in sorted(self.levels)]
        notes = [
            f"scheme {self.scheme}" + (f", group {self.group_size}" if self.scheme == "rtn-group" else "")
            + (", symmetric" if self.symmetric else "") + f"; epsilon {self.epsilon:g} nats; "
            f"n_q = {self.n_q} {unit}; base loss {self.loss_base:.6g} on {self.n} examples",
            *(f"warning: {w}" for w in self.warnings),
        ]
        return [Table("Critical compression threshold", [unit, "loss", "increase", ""], rows, notes)]


def _default_max_level(model: nn.Module, scheme: str) -> int:
    """16 bits, or for ``svd`` the largest rank of a weight matrix."""
    if scheme != "svd":
        return 16
    mats = [p for p in model.parameters() if p.dim() >= 2]
    return max((min(p.shape[0], p.numel() // p.shape[0]) for p in mats), default=1)


def _bisect(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The least level in ``[lo, hi]`` that passes ``ok``, assuming passing is monotone: ``None``
    if ``hi`` fails; evaluates ``hi``, then ``lo``, then the midpoints."""
    if not ok(hi):
        return None
    if ok(lo):
        return lo
    while hi - lo > 1:  # lo fails, hi passes
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def critical_compression(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    scheme: str = "rtn-channel",
    epsilon: float,
    min_level: int = 1,
    max_level: int | None = None,
    group_size: int = 32,
    symmetric: bool = False,
) -> CompressionResult:
    """Find ``n_q``: the fewest bits (or lowest rank) with loss increase ``<= epsilon`` (nats).

    Parameters
    ----------
    model : torch.nn.Module
        Not modified; each level is applied to a copy.
    loss_fn, data
        The evaluation loss (mean NLL, nats) and the evaluation data (explicit: no default set).
    scheme : {"rtn-tensor", "rtn-channel", "rtn-group", "svd"}
    epsilon : float
        Tolerated loss increase in nats per example (``> 0``).
    min_level, max_level : int
        The bracket; defaults 1 and 16 bits, or the largest matrix rank for ``svd``.
    """
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon must be a finite number > 0 (nats), got {epsilon!r}")
    CompressionSpec(scheme, max(min_level, 1), group_size, symmetric)  # validates the scheme
    x, y = as_tensors(data)
    if max_level is None:
        max_level = _default_max_level(model, scheme)
    if not 1 <= min_level <= max_level:
        raise ConfigError(f"need 1 <= min_level <= max_level, got {min_level} and {max_level}")
    base = evaluate_loss(model, loss_fn, (x, y))
    cache: dict[int, float] = {}

    def ok(level: int) -> bool:
        if level not in cache:
            spec = CompressionSpec(scheme, level, group_size, symmetric)
            cache[level] = evaluate_loss(compress_model(model, spec), loss_fn, (x, y))
        v = cache[level]
        return math.isfinite(v) and v - base <= epsilon

    notes: list[str] = []
    n_q = _bisect(ok, min_level, max_level)
    if n_q is None:
        notes.append(f"even level {max_level} raises the loss by more than epsilon: no n_q")
    levels = tuple(sorted(cache.items()))
    passes = [lv for lv, v in levels if v - base <= epsilon]
    if n_q is not None and any(lv < n_q for lv in passes):
        notes.append("the loss increase is not monotone in the level: bisection may have missed "
                     "a more aggressive level that passes")
    return CompressionResult(
        n_q=n_q, scheme=scheme, epsilon=float(epsilon), loss_base=base,
        loss_at_n_q=None if n_q is None else cache[n_q], levels=levels, group_size=group_size,
        symmetric=symmetric, n=int(x.shape[0]), warnings=tuple(notes),
    )


@dataclass(frozen=True)
class TwoPartCode(Rendered):
    """Two-part code length of data under a compressed model, in bits."""

    scheme: str
    level: int
    model_bits: float
    data_bits: float
    total_bits: float
    n: int
    loss: float

    def _tables(self) -> list[Table]:
        rows = [["model (bits)", self.model_bits], ["data given model (bits)", self.data_bits],
                ["total (bits)", self.total_bits], ["bits per example", self.total_bits / self.n],
                ["loss (nats/example)", self.loss]]
        return [Table(f"Two-part code ({self.scheme}, level {self.level})", ["part", "value"], rows)]


def two_part_code_length(
    model: nn.Module, loss_fn: LossFn, data: Any, *, scheme: str, level: int,
    group_size: int = 32, symmetric: bool = False, float_bits: int = 32, n: int | None = None,
) -> TwoPartCode:
    """``len(model_q) + n L_n(w_q) / ln 2`` bits, with ``model_q`` the compressed model.

    ``n`` is the number of predictions ``L_n`` averages over (default: rows of ``data``; a language
    model's windows hold ``rows x context`` tokens).
    """
    spec = CompressionSpec(scheme, level, group_size, symmetric)
    x, y = as_tensors(data)
    loss = evaluate_loss(compress_model(model, spec), loss_fn, (x, y))
    mb = compressed_bits(model, spec, float_bits=float_bits)
    count = int(x.shape[0]) if n is None else int(n)
    if count < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    db = count * loss / math.log(2)
    return TwoPartCode(scheme, level, mb, db, mb + db, count, loss)


def asymptotic_redundancy(llc: float, n: int, *, multiplicity: int = 1, unit: str = "bits") -> float:
    """``R_n = lambda log n - (m - 1) log log n`` (the ``O(1)`` term left out), in bits or nats.

    >>> round(asymptotic_redundancy(0.5, 1024, unit="bits"), 6)
    5.0
    """
    if unit not in ("bits", "nats"):
        raise ConfigError(f"unit must be 'bits' or 'nats', got {unit!r}")
    if n < 3:
        raise ConfigError(f"the formula needs n >= 3 (log log n > 0), got {n}")
    if not (math.isfinite(llc) and llc >= 0) or multiplicity < 1:
        raise ConfigError(f"need a finite lambda >= 0 and m >= 1, got {llc} and {multiplicity}")
    nats = llc * math.log(n) - (multiplicity - 1) * math.log(math.log(n))
    return nats / math.log(2) if unit == "bits" else nats
