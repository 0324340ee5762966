"""Small torch models at a true parameter, with data generated for them, whose LLC is known.

Every model is a Gaussian regression ``y = f_w(x) + N(0, I)`` with the loss
``L_n(w) = 1/(2n) sum_i ||y_i - f_w(x_i)||^2`` (the negative log-likelihood in nats per example
less a constant), except the logistic model (cross-entropy). The data are made so that the true
parameter ``w0`` is an *exact* minimum of ``L_n``: inputs are whitened (``X^T X / n = I``) and the
noise is projected orthogonal to the inputs, so ``L_n(w) - L_n(w0) = K(w)`` has the population
geometry whose learning coefficient the theorems give (``K(w) = ||f_w - f_{w0}||^2 / 2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from occamlab.errors import ConfigError, check_seed
from occamlab.slt._backends import LossFn
from occamlab.slt._known import (
    LearningCoefficient,
    dln_lambda,
    normal_crossing_lambda,
    regular_lambda,
)

__all__ = [
    "KnownModel",
    "DeepLinear",
    "NormalCrossing",
    "gaussian_nll",
    "make_dln",
    "make_rrr",
    "make_normal_crossing",
    "make_linear_regression",
    "make_logistic_regression",
]


def gaussian_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``mean_i ||y_i - out_i||^2 / 2``: Gaussian NLL (unit variance) per example, less a constant."""
    return 0.5 * (out - y).pow(2).reshape(out.shape[0], -1).sum(dim=1).mean()


def _logistic_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), y)


@dataclass(frozen=True)
class KnownModel:
    """A model at its true parameter, its data and loss, and its exact learning coefficient."""

    name: str
    model: nn.Module
    loss_fn: LossFn
    data: tuple[torch.Tensor, torch.Tensor]
    truth: LearningCoefficient

    @property
    def n(self) -> int:
        return int(self.data[0].shape[0])

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class DeepLinear(nn.Module):
    """``y = W_L ... W_1 x`` without biases; ``widths = (H_1, ..., H_{L+1})``."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in zip(self.widths, self.widths[1:], strict=False)
        )

    def linears(self) -> list[nn.Linear]:
        """The layers, first to last."""
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class NormalCrossing(nn.Module):
    """``f_w(x) = x prod_i w_i^(k_i)``, so ``K(w) = prod_i w_i^(2 k_i) / 2`` at ``w0 = 0``."""

    def __init__(self, k: Sequence[int]) -> None:
        super().__init__()
        self.k = tuple(int(v) for v in k)
        self.w = nn.Parameter(torch.zeros(len(self.k)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        powers = torch.as_tensor(self.k, dtype=self.w.dtype)
        return x * torch.prod(self.w**powers)


def _exact_min_data(
    n: int, d_in: int, clean: Callable[[torch.Tensor], torch.Tensor], d_out: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whitened inputs, and targets ``clean(x) + e`` with noise ``e`` orthogonal to the inputs."""
    if n < 2 * d_in + 2:
        raise ConfigError(f"n={n} is too small for inputs of width {d_in}; use n >= {2 * d_in + 2}")
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(x.T @ x / n)
    x = x @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T  # X^T X / n = I exactly
    e = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    e = e - x @ torch.linalg.lstsq(x, e).solution  # X^T e = 0
    with torch.no_grad():
        y = clean(x) + e
    return x.float(), y.float()


def _orthogonal(r: int, g: torch.Generator) -> torch.Tensor:
    q, rr = torch.linalg.qr(torch.randn(r, r, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(rr))


def make_dln(widths: Sequence[int], r: int, *, n: int = 1000, seed: int = 0) -> KnownModel:
    """Deep linear network at a true parameter of rank ``r``; truth from :func:`dln_lambda`.

    Every layer is zero except an ``r x r`` top-left orthogonal block, so the product has rank
    ``r`` with unit singular values and every layer's extra rows and columns vanish (the most
    singular true parameter, where the local coefficient equals the global one).
    """
    truth = dln_lambda(widths, r)
    g = torch.Generator().manual_seed(check_seed(seed))
    model = DeepLinear(widths)
    with torch.no_grad():
        for layer in model.linears():
            w = torch.zeros_like(layer.weight, dtype=torch.float64)
            if r > 0:
                w[:r, :r] = _orthogonal(r, g)
            layer.weight.copy_(w.float())
    widths = list(widths)
    layers_dbl = [layer.weight.detach().double() for layer in model.linears()]

    def clean(x: torch.Tensor) -> torch.Tensor:
        for w in layers_dbl:
            x = x @ w.T
        return x

    data = _exact_min_data(n, widths[0], clean, widths[-1], g)
    name = f"dln{'-'.join(map(str, widths))}-r{r}"
    return KnownModel(name, model.eval(), gaussian_nll, data, truth)


def make_rrr(M: int, H: int, N: int, r: int, *, n: int = 1000, seed: int = 0) -> KnownModel:
    """Reduced-rank regression ``y = B A x`` = a two-layer deep linear network (Aoyagi & Watanabe)."""
    km = make_dln([M, H, N], r, n=n, seed=seed)
    from occamlab.slt._known import rrr_lambda

    truth = rrr_lambda(M, H, N, r)
    return KnownModel(f"rrr{M}-{H}-{N}-r{r}", km.model, km.loss_fn, km.data, truth)


def make_linear_regression(d_in: int, d_out: int, *, n: int = 1000, seed: int = 0) -> KnownModel:
    """Linear regression ``y = W x`` at a random ``W0``: regular, ``lambda = d_in d_out / 2``."""
    g = torch.Generator().manual_seed(check_seed(seed))
    model = DeepLinear([d_in, d_out])
    w0 = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / math.sqrt(d_in)
    with torch.no_grad():
        model.linears()[0].weight.copy_(w0.float())
    data = _exact_min_data(n, d_in, lambda x: x @ w0.T, d_out, g)
    return KnownModel(
        f"linreg{d_in}x{d_out}", model.eval(), gaussian_nll, data, regular_lambda(d_in * d_out)
    )


def make_normal_crossing(k: Sequence[int], *, n: int = 1000, seed: int = 0) -> KnownModel:
    """``y = x prod w_i^(k_i) + noise`` at ``w0 = 0``: ``lambda = min 1/(2 k_i)`` (uniform prior)."""
    truth = normal_crossing_lambda(k)
    g = torch.Generator().manual_seed(check_seed(seed))
    data = _exact_min_data(n, 1, lambda x: torch.zeros_like(x), 1, g)
    model = NormalCrossing(k)
    return KnownModel(f"nc{''.join(map(str, k))}", model.eval(), gaussian_nll, data, truth)


def make_logistic_regression(d: int, *, n: int = 2000, seed: int = 0) -> KnownModel:
    """Logistic regression with ``d`` weights and a bias at its maximum-likelihood point.

    Regular: ``lambda = (d + 1)/2``. Labels come from a true ``w0``; the model is then fitted by
    Newton's method to the exact empirical minimum, which is where the LLC is measured.
    """
    g = torch.Generator().manual_seed(check_seed(seed))
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w0 = torch.randn(d, generator=g, dtype=torch.float64) / math.sqrt(d)
    p = torch.sigmoid(x @ w0 + 0.2)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < p).double()
    xb = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    w = torch.zeros(d + 1, dtype=torch.float64)
    for _ in range(50):  # Newton's method on the mean cross-entropy
        pr = torch.sigmoid(xb @ w)
        grad = xb.T @ (pr - y) / n
        hess = (xb * (pr * (1 - pr))[:, None]).T @ xb / n
        w = w - torch.linalg.solve(hess, grad)
        if grad.abs().max() < 1e-13:
            break
    model = nn.Linear(d, 1)
    with torch.no_grad():
        model.weight.copy_(w[:d].float()[None, :])
        model.bias.copy_(w[d:].float())
    return KnownModel(
        f"logreg{d}", model.eval(), _logistic_nll, (x.float(), y.float()), regular_lambda(d + 1)
    )
