"""Localized SGLD chains around a point ``w*``, several chains at once with ``torch.func``.

The chains sample the localized tempered posterior (Lau et al. 2023, arXiv:2308.12108)::

    p(w) ~ exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)

with the SGLD step (Welling & Teh 2011) on a minibatch ``B_t``::

    w <- w + (eps/2) (-n beta grad L_B(w) - gamma (w - w*)) + noise_level * N(0, eps)

or its RMSProp-preconditioned form (Li et al. 2016, pSGLD), with the diagonal metric
``G = 1/(sqrt(V) + delta)`` adapted from ``V <- alpha V + (1 - alpha) mean_chains(g^2)`` (``g``
the drift gradient, pooled over chains: one metric for all) during burn-in and then *frozen*, so
that the kept draws come from a fixed-metric Langevin chain (a metric that keeps following the
chains' state oversamples the regions where it is small and runs hot). ``V`` starts from
``n beta |diag H(w*)| + gamma`` (Hutchinson's estimator), the equilibrium value of ``g^2`` for a
quadratic loss, not from the drift at ``w*``, which vanishes at a minimum::

    w <- w + (eps/2) G (-n beta grad L_B(w) - gamma (w - w*)) + noise_level * N(0, eps G).

Each draw records ``L_B(w_t)`` and ``L_B(w*)`` on the same minibatch, so that
``n beta (L_B(w_t) - L_B(w*))`` is an unbiased, low-variance draw of ``n beta (L_n(w_t) - L_n(w*))``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

__all__ = ["ChainRun", "run_chains"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ChainRun:
    """Raw output of :func:`run_chains` (internal; :class:`LLCResult` is the public value)."""

    loss_trace: torch.Tensor  # (C, S) L_B(w_t) at every recorded step, burn-in included
    init_trace: torch.Tensor  # (C, S) L_B(w*) on the same minibatches
    diverged_at: list[int | None]  # per chain: step of divergence or None
    accept: torch.Tensor  # (C, S-1) MALA acceptance of each proposal (full batch only, else nan)
    virial: torch.Tensor  # (C, S) (w_t - w*) . grad U(w_t) / d; its mean is 1 under the target
    weighted_temperature: float  # sum_i E[g_i^2] T_i / sum_i E[g_i^2] (full batch only, else nan)
    final: dict[str, torch.Tensor]  # name -> (C, *shape) parameters after the last step
    vectorized: bool
    n_steps: int


def _make_loss(
    model: nn.Module, loss_fn: LossFn, fixed: dict[str, torch.Tensor]
) -> Callable[..., torch.Tensor]:
    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **p}, (x,))
        return loss_fn(out, y)

    return loss_one


def run_chains(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    names: list[str],
    nbeta: float,
    step_size: float,
    gamma: float,
    n_chains: int,
    n_steps: int,
    n_burnin: int,
    batch_size: int | None,
    sampler: str,
    rmsprop_alpha: float,
    rmsprop_delta: float,
    noise_level: float,
    divergence_threshold: float,
    vectorize: bool | None,
    generator: torch.Generator,
) -> ChainRun:
    """Run ``n_chains`` localized SGLD chains for ``n_steps`` steps from the model's weights.

    ``names`` are the parameters that move (a weight-refined LLC samples a subset); the rest,
    and the buffers, stay at their current values. Divergent chains (non-finite loss, or
    ``n beta (L_B - L_B(w*))`` above ``divergence_threshold``) are stopped: they are reset to
    ``w*`` and their step is recorded, and the caller leaves them out.
    """
    state: dict[str, torch.Tensor] = {
        k: v.detach() for k, v in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    center = {k: state[k].clone() for k in names}
    fixed = {k: v for k, v in state.items() if k not in center}
    loss_one = _make_loss(model, loss_fn, fixed)
    c = n_chains
    n = x.shape[0]
    full = batch_size is None or batch_size >= n
    params = {k: v.unsqueeze(0).repeat(c, *([1] * v.dim())).clone() for k, v in center.items()}

    vec_grad = vmap(grad_and_value(loss_one), in_dims=(0, 0, 0))
    vec_init = vmap(loss_one, in_dims=(None, 0, 0))
    seq_grad = grad_and_value(loss_one)

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        if full:
            return x.unsqueeze(0).expand(c, *x.shape), y.unsqueeze(0).expand(c, *y.shape)
        assert batch_size is not None
        idx = torch.randint(0, n, (c, batch_size), generator=generator, device=x.device)
        return x[idx], y[idx]

    use_vmap = True if vectorize is None else bool(vectorize)

    def grads(xb: torch.Tensor, yb: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return _grads(xb, yb, use_vmap)

    def _grads(
        xb: torch.Tensor, yb: torch.Tensor, vec: bool
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        nonlocal use_vmap
        if vec:
            try:
                g, v = vec_grad(params, xb, yb)
                return g, v
            except Exception:  # noqa: BLE001 - some ops have no batching rule: go sequential
                if vectorize:
                    raise
                use_vmap = False
        gs, vs = [], []
        for i in range(c):
            gi, vi = seq_grad({k: p[i] for k, p in params.items()}, xb[i], yb[i])
            gs.append(gi)
            vs.append(vi)
        return {k: torch.stack([gi[k] for gi in gs]) for k in params}, torch.stack(vs)

    full_init: torch.Tensor | None = None
    losses = torch.empty(c, n_steps, dtype=torch.float64)
    inits = torch.empty(c, n_steps, dtype=torch.float64)
    diverged: list[int | None] = [None] * c
    alive = torch.ones(c, dtype=torch.bool)
    sq: dict[str, torch.Tensor] | None = None  # RMSProp second moments, (C, *shape)
    sqrt_eps = math.sqrt(step_size) * noise_level
    dim = sum(v.numel() for v in center.values())
    virial = torch.empty(c, n_steps, dtype=torch.float64)
    accept = torch.full((c, max(n_steps - 1, 0)), float("nan"), dtype=torch.float64)
    # previous step, for the Metropolis acceptance probability of its proposal (a diagnostic of
    # the discretization error: Langevin proposals that MALA would accept are nearly unbiased)
    prev: dict[str, Any] | None = None
    vir_sum = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in center.items()}
    g2_sum = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in center.items()}
    n_acc = 0.0

    v0 = None
    if sampler == "rmsprop_sgld":
        v0 = _initial_second_moment(loss_one, center, x, y, nbeta, gamma, c, generator, batch_size)

    for t in range(n_steps):
        xb, yb = batches()
        with torch.no_grad():
            if full:
                if full_init is None:
                    full_init = loss_one(center, x, y).detach().expand(c)
                init_b = full_init
            elif use_vmap:
                try:
                    init_b = vec_init(center, xb, yb)
                except Exception:  # noqa: BLE001
                    init_b = torch.stack([loss_one(center, xb[i], yb[i]) for i in range(c)])
            else:
                init_b = torch.stack([loss_one(center, xb[i], yb[i]) for i in range(c)])
        g, val = grads(xb, yb)
        val = val.detach()
        losses[:, t] = val.to(torch.float64)
        inits[:, t] = init_b.detach().to(torch.float64)
        with torch.no_grad():
            excess = nbeta * (val.to(torch.float64) - init_b.to(torch.float64))
            drifts = {k: nbeta * g[k] + gamma * (p - center[k]) for k, p in params.items()}
            pot = nbeta * val.to(torch.float64)
            vir = torch.zeros(c, dtype=torch.float64)
            for k, p in params.items():
                vir += ((p - center[k]) * drifts[k]).reshape(c, -1).sum(1).double()
            virial[:, t] = vir / dim
            if t >= n_burnin and full:  # full-batch diagnostics (exact only there)
                live = alive.to(torch.float64)
                n_acc += float(live.sum())
                for k, p in params.items():
                    lv = live.reshape(c, *([1] * (p.dim() - 1)))
                    vir_sum[k] += (lv * ((p - center[k]) * drifts[k]).double()).sum(0)
                    g2_sum[k] += (lv * drifts[k].double().pow(2)).sum(0)
            for k, p in params.items():
                pot = pot + 0.5 * gamma * (p - center[k]).reshape(c, -1).pow(2).sum(1).double()
            if prev is not None and noise_level > 0 and full:
                # log q(w_t | w_{t+1}) - log q(w_{t+1} | w_t) with q = N(w - eps/2 G dU, eps G)
                log_rev = torch.zeros(c, dtype=torch.float64)
                for k, p in params.items():
                    m = prev["metric"][k]
                    back = prev["w"][k] - p + 0.5 * step_size * m * drifts[k]
                    log_rev -= (back.pow(2) / m).reshape(c, -1).sum(1).double() / (2 * step_size)
                log_a = prev["pot"] - pot + log_rev + prev["noise_sq"]
                accept[:, t - 1] = torch.exp(torch.clamp(log_a, max=0.0))
            prev = {"w": {}, "metric": {}, "pot": pot, "noise_sq": torch.zeros(c, dtype=torch.float64)}
            bad = ~torch.isfinite(excess) | (excess > divergence_threshold)
            for k in params:
                bad |= ~torch.isfinite(params[k].reshape(c, -1)).all(dim=1)
                bad |= ~torch.isfinite(g[k].reshape(c, -1)).all(dim=1)
            newly = bad & alive
            if newly.any():
                for i in torch.nonzero(newly).flatten().tolist():
                    diverged[i] = t
                alive &= ~newly
            for k, p in params.items():
                drift = drifts[k]  # gradient of the potential U
                noise = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device)
                if sampler == "rmsprop_sgld":
                    if sq is None:
                        sq = {}
                    # one metric shared by all chains: pooling makes it 4x less noisy, and a
                    # noisy 1/sqrt(V) runs hot (Jensen); chains parked after divergence are left out
                    w_alive = alive.to(drift.dtype).reshape(c, *([1] * (drift.dim() - 1)))
                    g2 = (w_alive * drift * drift).sum(0, keepdim=True) / w_alive.sum().clamp_min(1)
                    if k not in sq:
                        sq[k] = torch.maximum(g2, v0[k]) if v0 is not None else g2
                    elif t < n_burnin:  # adapted during burn-in only, then frozen: a metric
                        # that follows the chains' state oversamples where it is small (hot)
                        sq[k].mul_(rmsprop_alpha).add_(g2, alpha=1 - rmsprop_alpha)
                    metric = (1.0 / (sq[k].sqrt() + rmsprop_delta)).expand_as(p)
                else:
                    metric = torch.ones_like(p)
                step = -0.5 * step_size * metric * drift + sqrt_eps * metric.sqrt() * noise
                if full:
                    prev["w"][k] = p.clone()
                    prev["metric"][k] = metric
                    prev["noise_sq"] += (
                        0.5 * noise_level**2 * noise.pow(2).reshape(c, -1).sum(1).double()
                    )
                p.add_(step)
                dead = ~alive
                if dead.any():  # park stopped chains at w* so they cannot poison the batch
                    p[dead] = center[k].to(p.dtype)
    return ChainRun(
        loss_trace=losses,
        init_trace=inits,
        diverged_at=diverged,
        accept=accept,
        virial=virial,
        weighted_temperature=_weighted(vir_sum, g2_sum, n_acc),
        final={k: v.detach().clone() for k, v in params.items()},
        vectorized=use_vmap,
        n_steps=n_steps,
    )


def _initial_second_moment(
    loss_one: Callable[..., torch.Tensor],
    center: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    nbeta: float,
    gamma: float,
    n_probe: int,
    generator: torch.Generator,
    batch_size: int | None,
) -> dict[str, torch.Tensor] | None:
    """Starting RMSProp second moment: ``n beta |diag H| + gamma`` at ``w*`` (Hutchinson).

    At equilibrium a coordinate of curvature ``h`` has ``E[g^2] = h``; starting from the drift at
    ``w*`` (zero at a minimum) instead would give a huge first metric and chains that run hot for
    a long time. ``diag H ~ mean_probes(v * Hv)`` with Rademacher ``v``; ``None`` if the model does
    not support forward-over-reverse differentiation (then the drift itself starts ``V``).
    """
    from torch.func import grad, jvp

    k = x.shape[0] if batch_size is None else min(batch_size * 4, x.shape[0])
    xs, ys = x[:k], y[:k]
    try:
        est = {name: torch.zeros_like(v) for name, v in center.items()}
        for _ in range(max(n_probe, 2)):
            probe = {
                name: torch.randint(0, 2, v.shape, generator=generator, device=v.device).to(v.dtype) * 2 - 1
                for name, v in center.items()
            }
            with warnings.catch_warnings():  # torch notes its own deprecations in forward AD
                warnings.simplefilter("ignore", DeprecationWarning)
                hv = jvp(lambda p: grad(loss_one)(p, xs, ys), (center,), (probe,))[1]
            for name in est:
                est[name] += probe[name] * hv[name]
        return {
            name: (nbeta * (e / max(n_probe, 2)).abs() + gamma).unsqueeze(0) for name, e in est.items()
        }
    except Exception:  # noqa: BLE001 - an op without a forward-mode rule: fall back
        return None


def _weighted(vir: dict[str, torch.Tensor], g2: dict[str, torch.Tensor], count: float) -> float:
    """Curvature-weighted temperature ``sum_i E[g_i^2] T_i / sum_i E[g_i^2]``.

    ``T_i = E[(w_i - w*_i) dU/dw_i]`` is 1 for every coordinate under the target (integration by
    parts); weighting by ``E[g_i^2]`` (about the curvature) stresses the stiff coordinates, where the
    discretization error is largest, over flat ones that are still spreading out.
    """
    if count <= 0:
        return float("nan")
    num = sum(float((g2[k] * vir[k]).sum()) for k in vir)
    den = sum(float(g2[k].sum()) for k in g2)
    return num / (count * den) if den > 0 else float("nan")


def as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` from a pair of tensors or an iterable of such batches (concatenated)."""
    from occamlab.errors import DataError

    if isinstance(data, tuple | list) and len(data) == 2 and all(
        isinstance(t, torch.Tensor) for t in data
    ):
        x, y = data
    else:
        try:
            parts = list(data)
        except TypeError as exc:
            raise DataError(
                f"data must be a pair (inputs, targets) of tensors or an iterable of such batches, "
                f"got {type(data).__name__}"
            ) from exc
        if not parts:
            raise DataError("data is empty: the loader yielded no batches")
        for i, b in enumerate(parts):
            if not (isinstance(b, tuple | list) and len(b) == 2):
                raise DataError(f"batch {i} is not a pair (inputs, targets): {type(b).__name__}")
        x = torch.cat([torch.as_tensor(b[0]) for b in parts])
        y = torch.cat([torch.as_tensor(b[1]) for b in parts])
    if x.shape[0] == 0:
        raise DataError("data is empty: 0 examples")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"inputs have {x.shape[0]} rows but targets have {y.shape[0]}")
    return x, y
