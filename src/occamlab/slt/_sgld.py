"""Localized SGLD chains around a point ``w*``, several chains at once.

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
``L_B(w*)`` comes from the per-example losses at ``w*``, computed once (one forward pass over the
data) and checked against the chains' first step, which starts at ``w*``; where they disagree
(a loss that is not a mean of per-example terms) it is evaluated on every minibatch instead.

Implementation: the state of all chains is one ``(C, d)`` tensor, so that a step's update,
noise and diagnostics are a handful of tensor operations whatever the number of parameter
tensors. Gradients come from one model copy per chain whose parameters are views into that
tensor (plain autograd), or from one pass over all chains and one backward pass: through the
model's own ``ensemble_forward`` (occamlab's transformers), or ``torch.func.vmap`` for models whose
every operation has a batching rule.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

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
    backend: str  # "ensemble" (the model's ensemble_forward), "vmap" or "copies"
    n_steps: int


def _make_loss(
    model: nn.Module, loss_fn: LossFn, fixed: dict[str, torch.Tensor]
) -> Callable[..., torch.Tensor]:
    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **p}, (x,))
        return loss_fn(out, y)

    return loss_one


class _Layout:
    """Where each sampled parameter lives in the flat ``(..., d)`` chain state."""

    def __init__(self, center: dict[str, torch.Tensor]) -> None:
        self.names = list(center)
        self.shapes = [center[k].shape for k in self.names]
        self.sizes = [int(center[k].numel()) for k in self.names]
        self.d = sum(self.sizes)

    def flatten(self, tensors: dict[str, torch.Tensor], lead: int = 0) -> torch.Tensor:
        """Concatenate ``tensors`` (each ``(*lead_shape, *shape)``) along one flat last axis."""
        return torch.cat(
            [tensors[k].reshape(*tensors[k].shape[:lead], -1) for k in self.names], dim=-1
        )

    def views(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``w`` (shape ``(*lead, d)``) as a name -> ``(*lead, *shape)`` dict."""
        lead = tuple(w.shape[:-1])
        out, off = {}, 0
        for k, s, n in zip(self.names, self.shapes, self.sizes, strict=True):
            out[k] = w[..., off : off + n].view(*lead, *s)
            off += n
        return out

    def leaves(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of the chains' state ``w`` (C, d), each its own gradient leaf (a gradient taken
        through views of one (C, d) leaf would build a zero-filled (C, d) tensor per view)."""
        return {k: v.requires_grad_(True) for k, v in self.views(w).items()}

    @staticmethod
    def flat_grads(gs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        """Write the leaves' gradients into ``out`` (C, d) in layout order."""
        torch.cat([g.reshape(out.shape[0], -1) for g in gs], dim=1, out=out)


class _Sequential:
    """One model copy per chain; its sampled parameters are views of that chain's row of ``W``.

    With ``threads > 1`` the chains' forward and backward passes run in that many threads
    (torch releases the GIL inside its kernels), each chain's result written to its own row, so
    the numbers do not depend on the thread count.
    """

    vectorized = False
    backend = "copies"

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, layout: _Layout, W: torch.Tensor, threads: int = 1
    ) -> None:
        self.loss_fn = loss_fn
        self.copies: list[tuple[nn.Module, list[torch.Tensor]]] = []
        for i in range(W.shape[0]):
            m = copy.deepcopy(model)
            named = dict(m.named_parameters())
            moving = layout.views(W[i])
            for k, p in named.items():
                if k in moving:
                    p.data = moving[k]
                p.requires_grad_(k in moving)
            self.copies.append((m, [named[k] for k in layout.names]))
        self.threads = max(1, min(int(threads), len(self.copies)))
        self.pool: ThreadPoolExecutor | None = None
        self.saved_threads = torch.get_num_threads()
        if self.threads > 1:  # the thread budget goes to chains, one kernel thread each
            torch.set_num_threads(1)
            self.pool = ThreadPoolExecutor(self.threads)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
            torch.set_num_threads(self.saved_threads)

    def _chains(
        self, chains: range, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor,
        vals: torch.Tensor, full: bool,
    ) -> None:
        with torch.enable_grad():
            for i in chains:
                m, ps = self.copies[i]
                xi, yi = (xb, yb) if full else (xb[i], yb[i])
                loss = self.loss_fn(m(xi), yi)
                gs = torch.autograd.grad(loss, ps, allow_unused=True, materialize_grads=True)
                torch.cat([g.reshape(-1) for g in gs], out=out[i])
                vals[i] = loss.detach()

    def __call__(
        self, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor, full: bool
    ) -> torch.Tensor:
        c = len(self.copies)
        vals = torch.empty(c, dtype=out.dtype)
        if self.pool is None:
            self._chains(range(c), xb, yb, out, vals, full)
        else:
            k = self.threads
            jobs = [
                self.pool.submit(self._chains, range(j, c, k), xb, yb, out, vals, full)
                for j in range(k)
            ]
            for job in jobs:
                job.result()
        return vals


class _Vectorized:
    """All chains in one ``vmap``-ed forward pass (``functional_call``), one backward pass."""

    vectorized = True
    backend = "vmap"

    def __init__(
        self, loss_one: Callable[..., torch.Tensor], layout: _Layout, W: torch.Tensor
    ) -> None:
        self.layout = layout
        self.loss_one = loss_one
        self.W = W  # the chains' state, updated in place by the sampler

    def __call__(
        self, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor, full: bool
    ) -> torch.Tensor:
        dims = (0, None, None) if full else (0, 0, 0)
        with torch.enable_grad():
            ps = self.layout.leaves(self.W)
            vals = vmap(self.loss_one, in_dims=dims)(ps, xb, yb)
            gs = torch.autograd.grad(vals.sum(), list(ps.values()), materialize_grads=True)
        self.layout.flat_grads(gs, out)
        return vals.detach()


class _Ensemble:
    """All chains through the model's own ``ensemble_forward(params, x)``, one backward pass.

    The protocol: ``params`` maps every parameter name of the model to a ``(C, *shape)`` tensor
    (member ``c`` at chain ``c``'s weights), ``x`` is ``(C, B, ...)``, and the result is the C
    outputs ``(C, B, ...)`` (``occamlab.train.Transformer`` implements it). The caller's thread
    budget goes to the kernels, which split the chains' batched products between threads (on
    the benchmark's transformers that scales better than a thread per group of chains).
    """

    vectorized = True
    backend = "ensemble"

    def __init__(self, model: nn.Module, loss_fn: LossFn, layout: _Layout, W: torch.Tensor) -> None:
        self.forward: Callable[..., torch.Tensor] = getattr(model, "ensemble_forward")  # noqa: B009
        self.loss_fn = loss_fn
        self.layout = layout
        self.W = W
        moving = set(layout.names)
        self.fixed = {k: p.detach() for k, p in model.named_parameters() if k not in moving}

    def __call__(
        self, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor, full: bool
    ) -> torch.Tensor:
        c = out.shape[0]
        with torch.enable_grad():
            moving = self.layout.leaves(self.W)
            params = {n: v.expand(c, *v.shape) for n, v in self.fixed.items()}
            params.update(moving)
            if full:
                xb, yb = xb.expand(c, *xb.shape), yb.expand(c, *yb.shape)
            outs = self.forward(params, xb)
            losses = torch.stack([self.loss_fn(outs[i], yb[i]) for i in range(c)])
            gs = torch.autograd.grad(losses.sum(), list(moving.values()), materialize_grads=True)
        self.layout.flat_grads(gs, out)
        return losses.detach()


def has_ensemble_forward(model: nn.Module) -> bool:
    """The model evaluates C copies of itself at once (see :class:`_Ensemble`)."""
    return callable(getattr(model, "ensemble_forward", None))


def _slow_fallback(caught: list[warnings.WarningMessage]) -> bool:
    return any("performance drop" in str(w.message) for w in caught)


def per_example_losses(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, chunk: int = 4096
) -> torch.Tensor | None:
    """``loss_fn`` of each example at the model's weights, ``(n,)``; ``None`` if not separable.

    One batched forward pass (in chunks), then ``loss_fn`` on each output row (vectorized). The
    caller checks the result against a minibatch loss before relying on it.
    """
    try:
        parts = []
        with torch.no_grad():
            for i in range(0, x.shape[0], chunk):
                o = model(x[i : i + chunk])
                t = y[i : i + chunk]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parts.append(
                        vmap(lambda a, b: loss_fn(a.unsqueeze(0), b.unsqueeze(0)))(o, t)
                    )
        ell = torch.cat(parts).to(torch.float64)
    except Exception:  # noqa: BLE001 - a loss or model we cannot split per example
        return None
    if ell.shape != (x.shape[0],) or not torch.isfinite(ell).all():
        return None
    return ell


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

    ``vectorize``: ``True`` runs the chains together: through the model's own
    ``ensemble_forward`` when it has one (see :class:`_Ensemble`), else ``torch.func.vmap``;
    ``False`` one model copy per chain; ``None`` uses ``ensemble_forward`` when present, else
    tries ``vmap`` on the first step and keeps it unless an operation has no batching rule
    (torch then loops over the chains itself, slower than the copies).
    """
    state: dict[str, torch.Tensor] = {
        k: v.detach() for k, v in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    center_d = {k: state[k] for k in names}
    dtypes = {v.dtype for v in center_d.values()}
    if len(dtypes) != 1:
        from occamlab.errors import ConfigError

        raise ConfigError(
            f"the sampled parameters have mixed dtypes {sorted(str(t) for t in dtypes)}; "
            "sample a subset of one dtype (SGLDConfig.params) or cast the model"
        )
    layout = _Layout(center_d)
    fixed = {k: v for k, v in state.items() if k not in center_d}
    loss_one = _make_loss(model, loss_fn, fixed)
    c, d = n_chains, layout.d
    n = x.shape[0]
    full = batch_size is None or batch_size >= n
    center = layout.flatten(center_d).clone()  # (d,)
    W = center.unsqueeze(0).repeat(c, 1).contiguous()  # (C, d): every chain's parameters
    G = torch.empty_like(W)  # gradients of the minibatch loss

    evaluate: _Sequential | _Vectorized | _Ensemble | None = None
    budget = torch.get_num_threads()  # the caller's CPU budget: chains share it
    ensemble = vectorize is not False and has_ensemble_forward(model)
    if vectorize is not False and not ensemble:
        evaluate = _Vectorized(loss_one, layout, W)

    # L_B(w*) from per-example losses at w* when that costs less than a forward per step
    ell: torch.Tensor | None = None
    full_init: torch.Tensor | None = None
    if full:
        with torch.no_grad():
            full_init = loss_one(center_d, x, y).detach().to(torch.float64).expand(c)
    elif n <= c * n_steps * int(batch_size or n):
        ell = per_example_losses(model, loss_fn, x, y)
    ell_checked = False

    losses = torch.empty(c, n_steps, dtype=torch.float64)
    inits = torch.empty(c, n_steps, dtype=torch.float64)
    virial = torch.empty(c, n_steps, dtype=torch.float64)
    accept = torch.full((c, max(n_steps - 1, 0)), float("nan"), dtype=torch.float64)
    diverged: list[int | None] = [None] * c
    alive = torch.ones(c, dtype=torch.bool)
    sq: torch.Tensor | None = None  # RMSProp second moment, (1, d), shared by the chains
    sqrt_eps = math.sqrt(step_size) * noise_level
    vir_sum = torch.zeros(d, dtype=torch.float64)
    g2_sum = torch.zeros(d, dtype=torch.float64)
    n_acc = 0.0
    # previous step, for the Metropolis acceptance probability of its proposal (a diagnostic of
    # the discretization error: Langevin proposals that MALA would accept are nearly unbiased)
    prev: dict[str, Any] | None = None

    v0 = None
    if sampler == "rmsprop_sgld":
        v0d = _initial_second_moment(loss_one, center_d, x, y, nbeta, gamma, c, generator, batch_size)
        v0 = layout.flatten(v0d, lead=1) if v0d is not None else None  # (1, d)

    try:
        if ensemble:
            evaluate = _Ensemble(model, loss_fn, layout, W)
        elif evaluate is None:  # built inside the try: its thread pool is always closed
            evaluate = _Sequential(model, loss_fn, layout, W, budget)
        for t in range(n_steps):
            if full:
                xb, yb, idx = x, y, None
            else:
                assert batch_size is not None
                idx = torch.randint(0, n, (c, batch_size), generator=generator, device=x.device)
                xb, yb = x[idx], y[idx]
            if t == 0 and vectorize is None and not ensemble:  # try vmap; keep it unless torch loops
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        val = evaluate(xb, yb, G, full)
                        slow = _slow_fallback(caught)
                    except Exception:  # noqa: BLE001 - an op without a batching rule
                        slow = True
                if slow:  # torch would loop over the chains: model copies are faster
                    evaluate = _Sequential(model, loss_fn, layout, W, budget)
                    val = evaluate(xb, yb, G, full)
            else:
                val = evaluate(xb, yb, G, full)
            val64 = val.to(torch.float64)
            with torch.no_grad():
                if full:
                    assert full_init is not None
                    init_b = full_init
                elif ell is not None and (ell_checked or t > 0):
                    init_b = ell[idx].mean(dim=1)
                else:
                    init_b = torch.stack(
                        [loss_one(center_d, xb[i], yb[i]).detach() for i in range(c)]
                    ).to(torch.float64)
                    if ell is not None and not ell_checked:
                        # step 0 starts at w*: the chains' own losses must equal the cached ones
                        cached = ell[idx].mean(dim=1)
                        ok = torch.allclose(cached, init_b, rtol=1e-5, atol=1e-6)
                        ok = ok and torch.allclose(val64, init_b, rtol=1e-5, atol=1e-6)
                        ell = ell if ok else None
                        ell_checked = True
            losses[:, t] = val64
            inits[:, t] = init_b
            with torch.no_grad():
                excess = nbeta * (val64 - init_b)
                disp = W - center  # (C, d)
                drift = G.mul_(nbeta).add_(disp, alpha=gamma)  # gradient of the potential U
                vir = (disp * drift).sum(dim=1, dtype=torch.float64)  # (C,)
                virial[:, t] = vir / d
                if t >= n_burnin and full:  # full-batch diagnostics (exact only there)
                    live = alive.to(W.dtype).unsqueeze(1)
                    n_acc += float(alive.sum())
                    vir_sum += (live * disp * drift).sum(0, dtype=torch.float64)
                    g2_sum += (live * drift * drift).sum(0, dtype=torch.float64)
                if full:
                    pot = nbeta * val64 + 0.5 * gamma * disp.pow(2).sum(1, dtype=torch.float64)
                    if prev is not None and noise_level > 0:
                        # log q(w_t | w_{t+1}) - log q(w_{t+1} | w_t), q = N(w - eps/2 G dU, eps G)
                        m = prev["metric"]
                        back = prev["w"] - W + 0.5 * step_size * m * drift
                        log_rev = -(back.pow(2) / m).sum(1, dtype=torch.float64) / (2 * step_size)
                        log_a = prev["pot"] - pot + log_rev + prev["noise_sq"]
                        accept[:, t - 1] = torch.exp(torch.clamp(log_a, max=0.0))
                bad = ~torch.isfinite(excess) | (excess > divergence_threshold)
                bad |= ~torch.isfinite(drift).all(dim=1)
                newly = bad & alive
                if bool(newly.any()):
                    for i in torch.nonzero(newly).flatten().tolist():
                        diverged[i] = t
                    alive &= ~newly
                noise = torch.randn(W.shape, generator=generator, dtype=W.dtype, device=W.device)
                if sampler == "rmsprop_sgld":
                    # one metric shared by all chains: pooling makes it 4x less noisy, and a noisy
                    # 1/sqrt(V) runs hot (Jensen); chains parked after divergence are left out
                    w_alive = alive.to(drift.dtype).unsqueeze(1)
                    live_drift = torch.where(w_alive > 0, drift, torch.zeros_like(drift))
                    g2 = live_drift.pow(2).sum(0, keepdim=True) / w_alive.sum().clamp_min(1)
                    if sq is None:
                        sq = torch.maximum(g2, v0) if v0 is not None else g2
                    elif t < n_burnin:  # adapted during burn-in only, then frozen: a metric that
                        # follows the chains' state oversamples where it is small (runs hot)
                        sq.mul_(rmsprop_alpha).add_(g2, alpha=1 - rmsprop_alpha)
                    metric = 1.0 / (sq.sqrt() + rmsprop_delta)  # (1, d)
                    step = (-0.5 * step_size) * metric * drift + sqrt_eps * metric.sqrt() * noise
                else:
                    metric = torch.ones((1, d), dtype=W.dtype)
                    step = (-0.5 * step_size) * drift + sqrt_eps * noise
                if full:
                    prev = {
                        "w": W.clone(),
                        "metric": metric,
                        "pot": pot,
                        "noise_sq": 0.5 * noise_level**2 * noise.pow(2).sum(1, dtype=torch.float64),
                    }
                W.add_(step)
                if not bool(alive.all()):  # park stopped chains at w* so they cannot poison anything
                    W[~alive] = center
    finally:
        if isinstance(evaluate, _Sequential):
            evaluate.close()
    final = {k: v.clone() for k, v in layout.views(W).items()}
    return ChainRun(
        loss_trace=losses,
        init_trace=inits,
        diverged_at=diverged,
        accept=accept,
        virial=virial,
        weighted_temperature=_weighted(vir_sum, g2_sum, n_acc),
        final=final,
        vectorized=evaluate.vectorized,
        backend=evaluate.backend,
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


def _weighted(vir: torch.Tensor, g2: torch.Tensor, count: float) -> float:
    """Curvature-weighted temperature ``sum_i E[g_i^2] T_i / sum_i E[g_i^2]``.

    ``T_i = E[(w_i - w*_i) dU/dw_i]`` is 1 for every coordinate under the target (integration by
    parts); weighting by ``E[g_i^2]`` (about the curvature) stresses the stiff coordinates, where the
    discretization error is largest, over flat ones that are still spreading out.
    """
    if count <= 0:
        return float("nan")
    den = float(g2.sum())
    return float((g2 * vir).sum()) / (count * den) if den > 0 else float("nan")


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
