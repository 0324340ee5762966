"""How the SGLD chains get their gradients: three backends behind one call.

The state of all ``C`` chains is one ``(C, d)`` tensor ``W`` (see :class:`Layout`). A backend
evaluates the minibatch loss of every chain at its row of ``W`` and writes the gradients into a
``(C, d)`` tensor::

    backend(xb, yb, out, full) -> (C,) losses;   out[c] = grad_w L_B(W[c])

- ``"ensemble"`` (:class:`Ensemble`): the model's own ``ensemble_forward(params, x)``, every
  parameter with a leading chain axis; one batched pass per layer for all chains (occamlab's
  ``Transformer``).
- ``"vmap"`` (:class:`Vectorized`): ``torch.func.vmap`` of ``functional_call`` over the chains,
  one backward pass; for models whose every operation has a batching rule.
- ``"copies"`` (:class:`Sequential`): one model copy per chain whose parameters are views of
  its row of ``W``, plain autograd, optionally several chains in threads.

:class:`Backend` picks one from ``SGLDConfig.vectorize`` and, when that is ``None``, tries
``vmap`` on the first step and falls back to the copies where torch would loop over the chains.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call, vmap

__all__ = ["LossFn", "Layout", "Backend", "has_ensemble_forward", "make_loss", "per_example_losses",
           "split_state"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""The callable loss: ``loss_fn(model(inputs), targets) -> 0-dim tensor``, a mean over the batch."""


def split_state(
    model: nn.Module, params: tuple[str, ...] | list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The model's parameters and buffers, detached: ``(moving, fixed)``, ``moving`` the
    parameters named in ``params`` (in that order) and ``fixed`` everything else."""
    state = {
        k: v.detach()
        for k, v in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    moving = {k: state[k] for k in params}
    return moving, {k: v for k, v in state.items() if k not in moving}


def make_loss(
    model: nn.Module, loss_fn: LossFn, fixed: dict[str, torch.Tensor]
) -> Callable[..., torch.Tensor]:
    """``loss_one(params, x, y)``: ``loss_fn`` of the model at ``{**fixed, **params}``."""

    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **p}, (x,))
        return loss_fn(out, y)

    return loss_one


class Layout:
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


class _Evaluator(Protocol):
    vectorized: bool
    chain_backend: str

    def __call__(
        self, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor, full: bool
    ) -> torch.Tensor: ...


class Sequential:
    """One model copy per chain; its sampled parameters are views of that chain's row of ``W``.

    With ``threads > 1`` the chains' forward and backward passes run in that many threads
    (torch releases the GIL inside its kernels), each chain's result written to its own row, so
    the numbers do not depend on the thread count.
    """

    vectorized = False
    chain_backend = "copies"

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, layout: Layout, W: torch.Tensor, threads: int = 1
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


class Vectorized:
    """All chains in one ``vmap``-ed forward pass (``functional_call``), one backward pass."""

    vectorized = True
    chain_backend = "vmap"

    def __init__(
        self, loss_one: Callable[..., torch.Tensor], layout: Layout, W: torch.Tensor
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


class Ensemble:
    """All chains through the model's own ``ensemble_forward(params, x)``, one backward pass.

    The protocol: ``params`` maps every parameter name of the model to a ``(C, *shape)`` tensor
    (member ``c`` at chain ``c``'s weights), ``x`` is ``(C, B, ...)``, and the result is the C
    outputs ``(C, B, ...)`` (``occamlab.train.Transformer`` implements it). The caller's thread
    budget goes to the kernels, which split the chains' batched products between threads (on
    the benchmark's transformers that scales better than a thread per group of chains).
    """

    vectorized = True
    chain_backend = "ensemble"

    def __init__(self, model: nn.Module, loss_fn: LossFn, layout: Layout, W: torch.Tensor) -> None:
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
    """The model evaluates C copies of itself at once (see :class:`Ensemble`)."""
    return callable(getattr(model, "ensemble_forward", None))


def _slow_fallback(caught: list[warnings.WarningMessage]) -> bool:
    return any("performance drop" in str(w.message) for w in caught)


class Backend:
    """The chains' evaluator, chosen from ``vectorize``; always :meth:`close` it (thread pool).

    ``vectorize``: ``True`` runs the chains together: through the model's own
    ``ensemble_forward`` when it has one, else ``torch.func.vmap``; ``False`` one model copy
    per chain; ``None`` uses ``ensemble_forward`` when present, else tries ``vmap`` on the first
    call and keeps it unless an operation has no batching rule (torch then loops over the
    chains itself, slower than the copies). The copies share the caller's thread budget,
    ``torch.get_num_threads()`` when the backend is made. ``loss_one`` is :func:`make_loss`'s
    function of the sampled parameters (the ``vmap`` path differentiates it).
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, loss_one: Callable[..., torch.Tensor],
        layout: Layout, W: torch.Tensor, vectorize: bool | None,
    ) -> None:
        self.model, self.loss_fn, self.layout, self.W = model, loss_fn, layout, W
        self.budget = torch.get_num_threads()  # the caller's CPU budget: chains share it
        ensemble = vectorize is not False and has_ensemble_forward(model)
        self.trial = vectorize is None and not ensemble  # try vmap on the first call
        self.current: _Evaluator
        if ensemble:
            self.current = Ensemble(model, loss_fn, layout, W)
        elif vectorize is not False:
            self.current = Vectorized(loss_one, layout, W)
        else:
            self.current = self._copies()

    def _copies(self) -> Sequential:
        return Sequential(self.model, self.loss_fn, self.layout, self.W, self.budget)

    def __call__(
        self, xb: torch.Tensor, yb: torch.Tensor, out: torch.Tensor, full: bool
    ) -> torch.Tensor:
        """The ``(C,)`` minibatch losses of the chains at ``W``; their gradients into ``out``."""
        if not self.trial:
            return self.current(xb, yb, out, full)
        self.trial = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                val = self.current(xb, yb, out, full)
                slow = _slow_fallback(caught)
            except Exception:  # noqa: BLE001 - an op without a batching rule
                slow = True
        if slow:  # torch would loop over the chains: model copies are faster
            self.current = self._copies()
            val = self.current(xb, yb, out, full)
        return val

    @property
    def vectorized(self) -> bool:
        return self.current.vectorized

    @property
    def chain_backend(self) -> str:
        """``"ensemble"``, ``"vmap"`` or ``"copies"``."""
        return self.current.chain_backend

    def close(self) -> None:
        if isinstance(self.current, Sequential):
            self.current.close()


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
    except Exception:  # noqa: BLE001 - an op without a batching rule or a loss we cannot split
        return None
    if ell.shape != (x.shape[0],) or not torch.isfinite(ell).all():
        return None
    return ell
