"""Localized SGLD chains around a point ``w*``, several chains at once.

The chains sample the localized tempered posterior (Lau et al. 2023, arXiv:2308.12108)::

    p(w) ~ exp(-U(w)),   U(w) = n beta L_n(w) + gamma/2 ||w - w*||^2,

with the SGLD step (Welling & Teh 2011) on a minibatch ``B_t``::

    w <- w - (eps/2) grad U_B(w) + noise_level * N(0, eps),
    grad U_B(w) = n beta grad L_B(w) + gamma (w - w*),

or its RMSProp-preconditioned form (Li et al. 2016, pSGLD), with the diagonal metric
``G = 1/(sqrt(V) + delta)`` adapted from ``V <- alpha V + (1 - alpha) mean_chains(g^2)`` (``g``
the gradient of the potential, pooled over chains: one metric for all) during burn-in and then
*frozen*, so that the kept draws come from a fixed-metric Langevin chain (a metric that keeps
following the chains' state oversamples the regions where it is small and runs hot). ``V``
starts from ``n beta |diag H(w*)| + gamma`` (Hutchinson's estimator), the equilibrium value of
``g^2`` for a quadratic loss, not from the gradient at ``w*``, which vanishes at a minimum::

    w <- w - (eps/2) G grad U_B(w) + noise_level * N(0, eps G).

Each draw records ``L_B(w_t)`` and ``L_B(w*)`` on the same minibatch, so that
``n beta (L_B(w_t) - L_B(w*))`` is an unbiased, low-variance draw of ``n beta (L_n(w_t) - L_n(w*))``.
``L_B(w*)`` comes from the per-example losses at ``w*``, computed once (one forward pass over the
data) and checked against the chains' first step, which starts at ``w*``; where they disagree
(a loss that is not a mean of per-example terms) it is evaluated on every minibatch instead.

Structure: :func:`sgld_step` is the sampler, a function of the chains' state
(:class:`ChainState`), their gradients and a generator; :func:`run_chains` is the driver that
draws minibatches, asks a :class:`~occamlab.slt._backends.Backend` for gradients and records
the traces. The state of all chains is one ``(C, d)`` tensor, so that a step's update, noise and
diagnostics are a handful of tensor operations whatever the number of parameter tensors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from occamlab.slt._backends import (
    Backend,
    Layout,
    LossFn,
    make_loss,
    per_example_losses,
    split_state,
)

__all__ = ["ResolvedSGLD", "ChainState", "StepStats", "ChainRun", "sgld_step", "run_chains",
           "initial_second_moment", "as_tensors"]


@dataclass(frozen=True)
class ResolvedSGLD:
    """An :class:`~occamlab.slt.SGLDConfig` with every default resolved, as the chains run it.

    ``params`` are the names of the parameters that move (all trainable ones unless the config
    names a subset), ``nbeta``, ``gamma``, ``rmsprop_delta`` and ``divergence_threshold`` are
    numbers; the other fields are the config's own.
    """

    params: tuple[str, ...]
    nbeta: float
    gamma: float
    step_size: float
    n_chains: int
    n_draws: int
    n_burnin: int
    thin: int
    batch_size: int | None
    sampler: str
    rmsprop_alpha: float
    rmsprop_delta: float
    noise_level: float
    divergence_threshold: float
    vectorize: bool | None

    @property
    def n_steps(self) -> int:
        """Steps per chain: burn-in, then ``n_draws`` kept draws ``thin`` steps apart."""
        return self.n_burnin + self.n_draws * self.thin


@dataclass(frozen=True)
class Proposal:
    """A step's Langevin proposal ``w -> w'``, kept for the MALA acceptance of the next step."""

    w: torch.Tensor  # (C, d) where the proposal started
    metric: torch.Tensor  # (1, d) the preconditioner G it used
    potential: torch.Tensor  # (C,) float64 U(w)
    noise_sq: torch.Tensor  # (C,) float64 noise_level^2 |xi|^2 / 2


@dataclass(frozen=True)
class ChainState:
    """What one SGLD step needs from the previous one."""

    w: torch.Tensor  # (C, d) every chain's parameters
    alive: torch.Tensor  # (C,) bool: not diverged (a stopped chain is parked at w*)
    second_moment: torch.Tensor | None  # (1, d) RMSProp V, shared by the chains; None at first
    proposal: Proposal | None  # the previous step's proposal (full batch only), else None


@dataclass(frozen=True)
class StepStats:
    """What one SGLD step measured at the state it started from."""

    virial: torch.Tensor  # (C,) float64 (w - w*) . grad U(w)
    accept: torch.Tensor | None  # (C,) float64 MALA acceptance of the previous proposal
    newly_diverged: torch.Tensor  # (C,) bool
    disp: torch.Tensor  # (C, d) w - w*
    grad_u: torch.Tensor  # (C, d) grad U_B(w)


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
    chain_backend: str  # "ensemble" (the model's ensemble_forward), "vmap" or "copies"
    n_steps: int


def _potential_gradient(
    grads: torch.Tensor, disp: torch.Tensor, s: ResolvedSGLD
) -> torch.Tensor:
    """``grad U_B = n beta grad L_B(w) + gamma (w - w*)``: the tempered loss plus localization."""
    return torch.mul(grads, s.nbeta).add_(disp, alpha=s.gamma)


def _mala_acceptance(
    prev: Proposal, w: torch.Tensor, grad_u: torch.Tensor, potential: torch.Tensor,
    step_size: float,
) -> torch.Tensor:
    """Metropolis acceptance ``min(1, exp(-U(w') + U(w) + log q(w | w') - log q(w' | w)))`` of
    the previous proposal ``w -> w'``, ``q(. | w) = N(w - eps/2 G grad U(w), eps G)``: a
    diagnostic of the discretization error (proposals MALA would accept are nearly unbiased)."""
    m = prev.metric
    back = prev.w - w + 0.5 * step_size * m * grad_u
    log_rev = -(back.pow(2) / m).sum(1, dtype=torch.float64) / (2 * step_size)
    log_a = prev.potential - potential + log_rev + prev.noise_sq
    return torch.exp(torch.clamp(log_a, max=0.0))


def _diverged(
    excess: torch.Tensor, grad_u: torch.Tensor, alive: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Chains that diverge now: ``n beta (L_B - L_B(w*))`` non-finite or above ``threshold``,
    or a non-finite gradient, among those still ``alive``."""
    bad = ~torch.isfinite(excess) | (excess > threshold)
    bad |= ~torch.isfinite(grad_u).all(dim=1)
    return bad & alive


def _preconditioner(
    second_moment: torch.Tensor | None, grad_u: torch.Tensor, alive: torch.Tensor, t: int,
    v0: torch.Tensor | None, s: ResolvedSGLD,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """RMSProp: ``(V, G = 1/(sqrt(V) + delta))`` with ``V`` of the live chains' ``grad U^2``
    pooled (one metric for all chains: pooling makes it 4x less noisy, and a noisy
    ``1/sqrt(V)`` runs hot by Jensen), ``max(g^2, V0)`` at the first step, adapted during
    burn-in only and then frozen (a metric that follows the state oversamples where it is
    small). Plain SGLD: ``G = 1``."""
    if s.sampler != "rmsprop_sgld":
        return second_moment, torch.ones((1, grad_u.shape[1]), dtype=grad_u.dtype)
    w_alive = alive.to(grad_u.dtype).unsqueeze(1)
    live = torch.where(w_alive > 0, grad_u, torch.zeros_like(grad_u))
    g2 = live.pow(2).sum(0, keepdim=True) / w_alive.sum().clamp_min(1)  # (1, d)
    if second_moment is None:
        second_moment = torch.maximum(g2, v0) if v0 is not None else g2
    elif t < s.n_burnin:
        a = s.rmsprop_alpha
        second_moment = second_moment.mul(a).add_(g2, alpha=1 - a)
    return second_moment, 1.0 / (second_moment.sqrt() + s.rmsprop_delta)


def sgld_step(
    state: ChainState,
    grads: torch.Tensor,
    loss: torch.Tensor,
    loss_center: torch.Tensor,
    *,
    t: int,
    center: torch.Tensor,
    v0: torch.Tensor | None,
    settings: ResolvedSGLD,
    full_batch: bool,
    generator: torch.Generator,
) -> tuple[ChainState, StepStats]:
    """One localized (preconditioned) SGLD step of every chain.

    With ``g = grad U_B(w) = n beta grad L_B(w) + gamma (w - w*)`` and the metric ``G``
    (RMSProp, or 1 for plain SGLD)::

        w' = w - (eps/2) G g + noise_level sqrt(eps G) xi,   xi ~ N(0, I_d) from ``generator``.

    A chain whose ``n beta (L_B(w) - L_B(w*))`` exceeds ``divergence_threshold`` or turns
    non-finite stops (``alive`` false) and is parked at ``w*``. ``state`` is not modified.

    Parameters
    ----------
    state : ChainState
        The chains at ``w`` (C, d).
    grads : torch.Tensor
        ``grad L_B(w)`` of each chain, (C, d).
    loss, loss_center : torch.Tensor
        ``L_B(w)`` and ``L_B(w*)`` on each chain's minibatch, (C,) float64.
    t : int
        Step index (the metric adapts while ``t < n_burnin``).
    center : torch.Tensor
        ``w*``, (d,).
    v0 : torch.Tensor or None
        Starting RMSProp second moment ``n beta |diag H(w*)| + gamma``, (1, d).
    settings : ResolvedSGLD
    full_batch : bool
        The minibatch is the whole data: then ``U`` is exact and the MALA acceptance of the
        previous proposal is computed (the next state keeps this step's proposal).
    generator : torch.Generator
        The one source of the noise.

    Returns
    -------
    (ChainState, StepStats)
        The state after the step, and what was measured at ``w``.
    """
    s = settings
    with torch.no_grad():
        excess = s.nbeta * (loss - loss_center)  # (C,)
        disp = state.w - center  # (C, d)
        grad_u = _potential_gradient(grads, disp, s)
        virial = (disp * grad_u).sum(dim=1, dtype=torch.float64)  # (C,)
        potential, accept = None, None
        if full_batch:
            potential = s.nbeta * loss + 0.5 * s.gamma * disp.pow(2).sum(1, dtype=torch.float64)
            if state.proposal is not None and s.noise_level > 0:
                accept = _mala_acceptance(state.proposal, state.w, grad_u, potential, s.step_size)
        newly = _diverged(excess, grad_u, state.alive, s.divergence_threshold)
        alive = state.alive & ~newly
        w = state.w
        noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
        second_moment, metric = _preconditioner(state.second_moment, grad_u, alive, t, v0, s)
        sqrt_eps = math.sqrt(s.step_size) * s.noise_level
        if s.sampler == "rmsprop_sgld":
            step = (-0.5 * s.step_size) * metric * grad_u + sqrt_eps * metric.sqrt() * noise
        else:
            step = (-0.5 * s.step_size) * grad_u + sqrt_eps * noise
        proposal = None
        if potential is not None:
            noise_sq = 0.5 * s.noise_level**2 * noise.pow(2).sum(1, dtype=torch.float64)
            proposal = Proposal(w, metric, potential, noise_sq)
        new_w = w + step
        if not bool(alive.all()):  # park stopped chains at w* so they cannot poison anything
            new_w[~alive] = center
    return (
        ChainState(new_w, alive, second_moment, proposal),
        StepStats(virial, accept, newly, disp, grad_u),
    )


class _CenterLoss:
    """``L_B(w*)`` on each step's minibatches, ``(C,)`` float64.

    Full batch: one number, computed once. Minibatches: from the per-example losses at ``w*``
    (one forward pass over the data, when that costs less than a forward pass per step),
    checked at step 0 -- which starts at ``w*`` -- against a forward pass on each chain's batch
    and against the chains' own losses; a loss that is not a mean of per-example terms fails
    the check and is evaluated on every minibatch instead.
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, loss_one: Callable[..., torch.Tensor],
        center: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
        s: ResolvedSGLD, full: bool,
    ) -> None:
        self.loss_one, self.center, self.c = loss_one, center, s.n_chains
        self.full_batch: torch.Tensor | None = None
        self.per_example: torch.Tensor | None = None  # (n,) float64
        self.checked = False
        if full:
            with torch.no_grad():
                self.full_batch = loss_one(center, x, y).detach().to(torch.float64).expand(self.c)
        elif x.shape[0] <= self.c * s.n_steps * int(s.batch_size or x.shape[0]):
            self.per_example = per_example_losses(model, loss_fn, x, y)

    def __call__(
        self, t: int, idx: torch.Tensor | None, xb: torch.Tensor, yb: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        with torch.no_grad():
            if self.full_batch is not None:
                return self.full_batch
            ell = self.per_example
            if ell is not None and (self.checked or t > 0):
                return ell[idx].mean(dim=1)
            out = torch.stack(
                [self.loss_one(self.center, xb[i], yb[i]).detach() for i in range(self.c)]
            ).to(torch.float64)
            if ell is not None and not self.checked:
                # step 0 starts at w*: the chains' own losses must equal the cached ones
                cached = ell[idx].mean(dim=1)
                ok = torch.allclose(cached, out, rtol=1e-5, atol=1e-6)
                ok = ok and torch.allclose(loss, out, rtol=1e-5, atol=1e-6)
                self.per_example = ell if ok else None
                self.checked = True
            return out


class _Traces:
    """The per-step records of a run, and the sums behind the weighted temperature."""

    def __init__(self, c: int, n_steps: int, d: int, n_burnin: int, full: bool) -> None:
        f64 = torch.float64
        self.d, self.n_burnin, self.full = d, n_burnin, full
        self.losses = torch.empty(c, n_steps, dtype=f64)
        self.inits = torch.empty(c, n_steps, dtype=f64)
        self.virial = torch.empty(c, n_steps, dtype=f64)
        self.accept = torch.full((c, max(n_steps - 1, 0)), float("nan"), dtype=f64)
        self.diverged: list[int | None] = [None] * c
        self.vir_sum = torch.zeros(d, dtype=f64)
        self.g2_sum = torch.zeros(d, dtype=f64)
        self.n_acc = 0.0

    def record(
        self, t: int, alive: torch.Tensor, loss: torch.Tensor, loss_center: torch.Tensor,
        stats: StepStats,
    ) -> None:
        """Step ``t``'s losses and diagnostics; ``alive`` is the chains' status before it."""
        self.losses[:, t] = loss
        self.inits[:, t] = loss_center
        self.virial[:, t] = stats.virial / self.d
        if t >= self.n_burnin and self.full:  # full-batch diagnostics (exact only there)
            live = alive.to(stats.disp.dtype).unsqueeze(1)
            self.n_acc += float(alive.sum())
            self.vir_sum += (live * stats.disp * stats.grad_u).sum(0, dtype=torch.float64)
            self.g2_sum += (live * stats.grad_u * stats.grad_u).sum(0, dtype=torch.float64)
        if stats.accept is not None:
            self.accept[:, t - 1] = stats.accept
        if bool(stats.newly_diverged.any()):
            for i in torch.nonzero(stats.newly_diverged).flatten().tolist():
                self.diverged[i] = t

    def weighted_temperature(self) -> float:
        """Curvature-weighted temperature ``sum_i E[g_i^2] T_i / sum_i E[g_i^2]``.

        ``T_i = E[(w_i - w*_i) dU/dw_i]`` is 1 for every coordinate under the target
        (integration by parts); weighting by ``E[g_i^2]`` (about the curvature) stresses the
        stiff coordinates, where the discretization error is largest, over flat ones that are
        still spreading out.
        """
        if self.n_acc <= 0:
            return float("nan")
        den = float(self.g2_sum.sum())
        return float((self.g2_sum * self.vir_sum).sum()) / (self.n_acc * den) if den > 0 else float("nan")


def _minibatch(
    x: torch.Tensor, y: torch.Tensor, s: ResolvedSGLD, full: bool, generator: torch.Generator
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(idx, xb, yb)``: every chain's own i.i.d. minibatch, drawn with replacement, ``idx``
    (C, B); or the whole data (``idx`` None)."""
    if full:
        return None, x, y
    assert s.batch_size is not None
    idx = torch.randint(0, x.shape[0], (s.n_chains, s.batch_size), generator=generator,
                        device=x.device)
    return idx, x[idx], y[idx]


def _sampled(
    model: nn.Module, params: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], Layout, dict[str, torch.Tensor]]:
    """``(w* by name, its layout, the fixed parameters and buffers)``; one dtype required."""
    center, fixed = split_state(model, params)
    dtypes = {v.dtype for v in center.values()}
    if len(dtypes) != 1:
        from occamlab.errors import ConfigError

        raise ConfigError(
            f"the sampled parameters have mixed dtypes {sorted(str(t) for t in dtypes)}; "
            "sample a subset of one dtype (SGLDConfig.params) or cast the model"
        )
    return center, Layout(center), fixed


def run_chains(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: ResolvedSGLD,
    *,
    generator: torch.Generator,
) -> ChainRun:
    """Run ``n_chains`` localized SGLD chains for ``settings.n_steps`` steps from the model's
    weights ``w*`` (:func:`sgld_step` on the gradients of a :class:`Backend`).

    ``settings.params`` are the parameters that move (a weight-refined LLC samples a subset);
    the rest, and the buffers, stay at their current values; the model is never modified.
    Divergent chains are stopped, reset to ``w*`` and their step recorded; the caller leaves
    them out. Random draws, all from ``generator``: the Hutchinson probes of the starting
    RMSProp metric, then at every step each chain's minibatch and the noise.
    """
    s = settings
    center_d, layout, fixed = _sampled(model, s.params)
    loss_one = make_loss(model, loss_fn, fixed)
    full = s.batch_size is None or s.batch_size >= x.shape[0]
    center = layout.flatten(center_d).clone()  # (d,)
    W = center.unsqueeze(0).repeat(s.n_chains, 1).contiguous()  # (C, d): what the backend reads
    G = torch.empty_like(W)  # gradients of the minibatch loss
    center_loss = _CenterLoss(model, loss_fn, loss_one, center_d, x, y, s, full)
    v0 = None
    if s.sampler == "rmsprop_sgld":
        v0d = initial_second_moment(loss_one, center_d, x, y, s.nbeta, s.gamma, s.n_chains,
                                     generator, s.batch_size)
        v0 = layout.flatten(v0d, lead=1) if v0d is not None else None  # (1, d)
    state = ChainState(W.clone(), torch.ones(s.n_chains, dtype=torch.bool), None, None)
    traces = _Traces(s.n_chains, s.n_steps, layout.d, s.n_burnin, full)
    backend: Backend | None = None
    try:  # the backend is made inside: its thread pool is always closed
        backend = Backend(model, loss_fn, loss_one, layout, W, s.vectorize)
        for t in range(s.n_steps):
            W.copy_(state.w)  # the backend reads W (the model copies' weights are views of it)
            idx, xb, yb = _minibatch(x, y, s, full, generator)
            loss = backend(xb, yb, G, full).to(torch.float64)
            loss_center = center_loss(t, idx, xb, yb, loss)
            new, stats = sgld_step(state, G, loss, loss_center, t=t, center=center, v0=v0,
                                   settings=s, full_batch=full, generator=generator)
            traces.record(t, state.alive, loss, loss_center, stats)
            state = new
    finally:
        if backend is not None:
            backend.close()
    return ChainRun(
        loss_trace=traces.losses,
        init_trace=traces.inits,
        diverged_at=traces.diverged,
        accept=traces.accept,
        virial=traces.virial,
        weighted_temperature=traces.weighted_temperature(),
        final={k: v.clone() for k, v in layout.views(state.w).items()},
        vectorized=backend.vectorized,
        chain_backend=backend.chain_backend,
        n_steps=s.n_steps,
    )


def initial_second_moment(
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

    At equilibrium a coordinate of curvature ``h`` has ``E[g^2] = h``; starting from the
    gradient of the potential at ``w*`` (zero at a minimum) instead would give a huge first
    metric and chains that run hot for a long time. ``diag H ~ mean_probes(v * Hv)`` with
    Rademacher ``v``; ``None`` if the model does not support forward-over-reverse
    differentiation (then the first step's ``g^2`` starts ``V``).
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
