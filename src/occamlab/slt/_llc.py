"""The local learning coefficient estimator (Lau et al. 2023) and its result type.

``lambda_hat(w*) = n beta (E_w[L_n(w)] - L_n(w*))`` where ``w`` follows the localized tempered
posterior ``exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)`` sampled by :func:`run_chains`; the
default ``n beta = n / log n`` (Watanabe's WBIC temperature). Burn-in draws are dropped and
``L_n(w*)`` is measured on the same minibatches the chains see.

:func:`estimate_llc` is a thin driver: check the inputs, resolve the settings
(:func:`resolve_sgld`), run the chains (:func:`run_chains`), summarise them and turn the
diagnostics into warnings (:mod:`occamlab.slt._summary`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from occamlab._config import ConfigBase
from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, ConvergenceWarning, check_seed, suggest
from occamlab.slt._backends import LossFn, make_loss, split_state
from occamlab.slt._sgld import (
    ChainRun,
    ResolvedSGLD,
    as_tensors,
    initial_second_moment,
    run_chains,
)
from occamlab.slt._summary import ChainSummary, diagnose, summarise

__all__ = ["SGLDConfig", "LLCResult", "estimate_llc", "default_nbeta", "pin_nbeta"]

SAMPLERS = ("sgld", "rmsprop_sgld")


def default_nbeta(n: int) -> float:
    """``n beta = n / log n`` (Watanabe 2013, the WBIC inverse temperature times n)."""
    if n < 2:
        raise ConfigError(f"n beta = n/log n needs n >= 2 examples, got n={n}")
    return n / math.log(n)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"n must be an integer >= 2 (examples L_n averages over), got {n!r}")
    return n


def pin_nbeta(config: SGLDConfig, n: int) -> SGLDConfig:
    """``config`` with ``n beta`` fixed at ``n / log n`` when it leaves it to the default.

    ``SGLDConfig(nbeta=None)`` means ``n beta = n / log n`` with ``n`` the number of rows of the
    data the sampler sees. When ``n`` -- what ``L_n`` averages over -- is something else (the
    ``rows x context`` predicted tokens of a language model's windows), every run that should
    sample the estimate's tempered posterior ``exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)``
    (calibration pilots, the chains of a trajectory) must be given this ``n beta`` explicitly;
    the ``gamma`` that defaults from it follows. A config that sets ``nbeta`` is returned as is.

    Parameters
    ----------
    config : SGLDConfig
    n : int
        Examples (predictions) ``L_n`` averages over, ``>= 2``.

    Returns
    -------
    SGLDConfig

    Raises
    ------
    ConfigError
        ``n`` is not an integer ``>= 2``.

    Examples
    --------
    >>> round(pin_nbeta(SGLDConfig(), 1000).nbeta, 3)
    144.765
    >>> pin_nbeta(SGLDConfig(nbeta=50.0), 1000).nbeta
    50.0
    """
    _check_n(n)
    if config.nbeta is not None:
        return config
    return replace(config, nbeta=default_nbeta(n))


@dataclass(frozen=True)
class SGLDConfig(ConfigBase):
    """Settings of the localized SGLD sampler (every one is recorded with the result).

    Parameters
    ----------
    step_size : float
        ``epsilon`` of the SGLD step (for ``rmsprop_sgld``, the step before preconditioning).
    gamma : float or None
        Localization strength ``gamma`` (``>= 0``); ``None`` means ``n beta / 100``, which biases a
        quadratic loss of unit curvature by about 1% (``lambda nbeta/(nbeta + gamma)``), or
        ``n beta / 10^4`` when the Hessian at ``w*`` vanishes (mean ``|diag H| < 1e-6``: a loss flat
        to second order, whose posterior spreads much further than ``1/sqrt(n beta)``).
    nbeta : float or None
        ``n beta``; ``None`` means ``n / log n`` with ``n`` the number of examples.
    n_chains, n_draws, n_burnin : int
        Chains; kept draws per chain; burn-in steps per chain (dropped).
    thin : int
        Keep every ``thin``-th step after burn-in.
    batch_size : int or None
        Minibatch size; ``None`` (or ``>= n``) uses the full data set every step.
    sampler : {"sgld", "rmsprop_sgld"}
    rmsprop_alpha : float
        Decay of the RMSProp second moment (adapted during burn-in, frozen afterwards).
    rmsprop_delta : float or None
        Floor added to ``sqrt(V)``; ``None`` means ``sqrt(gamma)`` (the scale of ``grad U`` that
        the localization alone produces), or 1 when ``gamma = 0``.
    noise_level : float
        Multiplies the injected noise; 1 samples the posterior, 0 turns SGLD into gradient descent
        (a testing aid; the estimate is then not an LLC).
    params : tuple of str or None
        Weight-refined LLC: names of the parameters that move (the rest stay at ``w*``).
    divergence_threshold : float or None
        A chain stops when ``n beta (L_B(w) - L_B(w*))`` exceeds it or turns non-finite;
        ``None`` means ``1000 + 10 d`` (far above the ``~ d/2`` of a healthy chain).
    vectorize : bool or None
        Run the chains together: through the model's ``ensemble_forward(params, x)`` when it
        has one (occamlab's ``Transformer``), else with ``torch.func.vmap``. ``None``: the
        ensemble forward if present, else try ``vmap``, else one model copy per chain;
        ``False``: model copies.
    """

    step_size: float = 3e-3
    gamma: float | None = None
    nbeta: float | None = None
    n_chains: int = 4
    n_draws: int = 400
    n_burnin: int = 400
    thin: int = 1
    batch_size: int | None = None
    sampler: str = "rmsprop_sgld"
    rmsprop_alpha: float = 0.99
    rmsprop_delta: float | None = None
    noise_level: float = 1.0
    params: tuple[str, ...] | None = None
    divergence_threshold: float | None = None
    vectorize: bool | None = None

    def __post_init__(self) -> None:
        def pos(name: str, v: Any, *, allow_zero: bool = False, integer: bool = False) -> None:
            ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
            if isinstance(v, bool) or not ok_type or not math.isfinite(v) or (
                v < 0 if allow_zero else v <= 0
            ):
                what = "an integer" if integer else "a finite number"
                bound = ">= 0" if allow_zero else "> 0"
                raise ConfigError(f"SGLDConfig.{name} must be {what} {bound}, got {v!r}")

        pos("step_size", self.step_size)
        if self.gamma is not None:
            pos("gamma", self.gamma, allow_zero=True)
        if self.nbeta is not None:
            pos("nbeta", self.nbeta)
        pos("n_chains", self.n_chains, integer=True)
        pos("n_draws", self.n_draws, integer=True)
        pos("n_burnin", self.n_burnin, allow_zero=True, integer=True)
        pos("thin", self.thin, integer=True)
        if self.batch_size is not None:
            pos("batch_size", self.batch_size, integer=True)
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"SGLDConfig.sampler must be one of {SAMPLERS}, got {self.sampler!r}"
                + suggest(str(self.sampler), SAMPLERS)
            )
        if not 0 < self.rmsprop_alpha < 1:
            raise ConfigError(f"SGLDConfig.rmsprop_alpha must be in (0, 1), got {self.rmsprop_alpha}")
        if self.rmsprop_delta is not None:
            pos("rmsprop_delta", self.rmsprop_delta)
        pos("noise_level", self.noise_level, allow_zero=True)
        if self.divergence_threshold is not None:
            pos("divergence_threshold", self.divergence_threshold)
        if self.params is not None:
            if isinstance(self.params, str) or not all(isinstance(p, str) for p in self.params):
                raise ConfigError("SGLDConfig.params must be a tuple of parameter names")
            object.__setattr__(self, "params", tuple(self.params))



@dataclass(frozen=True)
class LLCResult(Rendered):
    """An LLC estimate with its Monte Carlo error, diagnostics and the settings that made it.

    ``llc`` is the mean of the per-chain estimates over chains that did not diverge (``nan``
    when none survived; never ``inf``), ``llc_stderr`` their standard deviation over
    ``sqrt(chains)``. ``llc_trace`` holds ``n beta (L_B(w_t) - L_B(w*))`` for the kept draws,
    ``loss_trace`` the chain losses of every step including burn-in (``n_burnin`` first).
    """

    llc: float
    llc_stderr: float
    llc_per_chain: tuple[float, ...]
    nbeta: float
    gamma: float
    n: int
    n_params: int
    loss_init: float
    rhat: float
    ess: float
    drift_z: float
    mala_acceptance: float
    temperature: float
    temperature_weighted: float
    temperature_stderr: float
    diverged: tuple[int | None, ...]
    warnings: tuple[str, ...]
    config: SGLDConfig
    loss_trace: tuple[tuple[float, ...], ...] = field(default_factory=tuple, repr=False)
    llc_trace: tuple[tuple[float, ...], ...] = field(default_factory=tuple, repr=False)
    vectorized: bool = True
    chain_backend: str = ""  # "ensemble", "vmap" or "copies": how the chains were evaluated

    @property
    def valid(self) -> bool:
        """The estimate passed all its own diagnostics (no divergence, R-hat, drift, effective
        sample size, temperature, sign): ``warnings`` is empty."""
        return not self.warnings

    def _tables(self) -> list[Table]:
        c = self.config
        rows: list[list[Any]] = [
            ["llc", self.llc],
            ["standard error", self.llc_stderr],
            ["n beta", self.nbeta],
            ["n (examples)", self.n],
            ["parameters sampled", self.n_params],
            ["L_n(w*)", self.loss_init],
            ["R-hat", self.rhat],
            ["effective sample size", self.ess],
            ["drift z (last vs first third)", self.drift_z],
            ["MALA acceptance (mean)", self.mala_acceptance],
            ["configurational temperature (1 = exact)", self.temperature],
            ["curvature-weighted temperature", self.temperature_weighted],
            ["sampler", f"{c.sampler}, step {fmt_num(c.step_size)}, gamma {fmt_num(self.gamma)}"],
            ["chains x draws (burn-in)", f"{c.n_chains} x {c.n_draws} ({c.n_burnin})"],
        ]
        chains = [
            [i, v, "diverged at step " + str(s) if s is not None else "ok"]
            for i, (v, s) in enumerate(zip(self.llc_per_chain, self.diverged, strict=True))
        ]
        notes = [f"warning: {w}" for w in self.warnings] or ["no warnings"]
        return [
            Table("Local learning coefficient", ["quantity", "value"], rows, notes),
            Table("Chains", ["chain", "llc", "status"], chains),
        ]


def default_gamma(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    params: list[str],
    nbeta: float,
    *,
    batch_size: int | None,
    seed: int,
) -> float:
    """``n beta / 100``, or ``n beta / 10^4`` where the Hessian at ``w*`` vanishes (Hutchinson).

    ``params`` names the sampled parameters; the probes are seeded by ``seed + 7919``."""
    center, fixed = split_state(model, params)
    gen = torch.Generator(device=x.device)
    gen.manual_seed(int(seed) + 7919)
    diag = initial_second_moment(make_loss(model, loss_fn, fixed), center, x, y, 1.0, 0.0, 4,
                                  gen, batch_size)
    if diag is None:
        return nbeta / 100.0
    d = sum(v.numel() for v in diag.values())
    mean_abs = sum(float(v.sum()) for v in diag.values()) / max(d, 1)
    return nbeta / 10_000.0 if mean_abs < 1e-6 else nbeta / 100.0


def fmt_num(v: float) -> str:
    return f"{v:.3g}"


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        mode_dependent = [
            name or type(model).__name__
            for name, m in model.named_modules()
            if (isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)
            or isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        if mode_dependent:
            raise ConfigError(
                f"model is in train mode and {mode_dependent[0]!r} behaves differently in train "
                "mode (dropout or batch norm): the loss would be random. Call model.eval() first."
            )


def _check_loss(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> float:
    """Evaluate ``L_n(w*)`` and check that the loss is a finite scalar *mean* over the batch."""
    k = min(x.shape[0], 64)
    with torch.no_grad():
        small = loss_fn(model(x[:k]), y[:k])
        if not isinstance(small, torch.Tensor) or small.dim() != 0:
            shape = tuple(small.shape) if isinstance(small, torch.Tensor) else type(small).__name__
            raise ConfigError(
                f"loss_fn must return a scalar (0-dim tensor) mean over the batch, got {shape}"
            )
        doubled = loss_fn(model(torch.cat([x[:k], x[:k]])), torch.cat([y[:k], y[:k]]))
        a, b = float(small), float(doubled)
        if math.isfinite(a) and abs(a) > 1e-12 and abs(b - 2 * a) < 1e-4 * abs(a) + 1e-12:
            raise ConfigError(
                "loss_fn looks like a sum over the batch (repeating the batch doubles it); "
                "the LLC needs the mean loss per example (for example reduction='mean')"
            )
        full = float(loss_fn(model(x), y))
    if not math.isfinite(full):
        raise ConfigError(f"the loss at w* is not finite ({full}); cannot estimate an LLC there")
    return full


def _sampled_params(model: nn.Module, config: SGLDConfig) -> list[str]:
    """The names of the parameters that move: ``config.params``, or every trainable one."""
    all_names = [k for k, p in model.named_parameters() if p.requires_grad]
    if config.params is None:
        names = all_names
    else:
        missing = [p for p in config.params if p not in all_names]
        if missing:
            raise ConfigError(
                f"SGLDConfig.params names {missing[0]!r}, which is not a trainable parameter"
                + suggest(missing[0], all_names) + f"; the model has: {', '.join(all_names)}"
            )
        names = list(config.params)
    if not names:
        raise ConfigError("the model has no trainable parameters to sample")
    return names


def resolve_sgld(
    config: SGLDConfig, model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
    *, n: int, seed: int,
) -> ResolvedSGLD:
    """``config`` with its defaults resolved for this model and data.

    ``n beta = n / log n`` (unless set); ``gamma`` from :func:`default_gamma` (unless set;
    Hutchinson probes seeded by ``seed``); ``rmsprop_delta = sqrt(gamma)``, or 1 when
    ``gamma = 0``; ``divergence_threshold = 1000 + 10 d`` with ``d`` the sampled parameters.
    """
    names = _sampled_params(model, config)
    named = dict(model.named_parameters())
    d = int(sum(named[k].numel() for k in names))
    nbeta = float(config.nbeta) if config.nbeta is not None else default_nbeta(n)
    gamma = float(config.gamma) if config.gamma is not None else default_gamma(
        model, loss_fn, x, y, names, nbeta, batch_size=config.batch_size, seed=seed
    )
    delta = config.rmsprop_delta
    if delta is None:
        delta = math.sqrt(gamma) if gamma > 0 else 1.0
    return ResolvedSGLD(
        params=tuple(names), nbeta=nbeta, gamma=gamma, step_size=config.step_size,
        n_chains=config.n_chains, n_draws=config.n_draws, n_burnin=config.n_burnin,
        thin=config.thin, batch_size=config.batch_size, sampler=config.sampler,
        rmsprop_alpha=config.rmsprop_alpha, rmsprop_delta=delta,
        noise_level=config.noise_level,
        divergence_threshold=config.divergence_threshold or 1000.0 + 10.0 * d,
        vectorize=config.vectorize,
    )


def _result(
    s: ChainSummary, run: ChainRun, resolved: ResolvedSGLD, config: SGLDConfig, *, n: int,
    n_params: int, loss_init: float, notes: list[str],
) -> LLCResult:
    """The :class:`LLCResult` of a summarised run."""
    return LLCResult(
        llc=s.llc, llc_stderr=s.llc_stderr, llc_per_chain=s.llc_per_chain,
        nbeta=resolved.nbeta, gamma=resolved.gamma, n=n, n_params=n_params,
        loss_init=loss_init, rhat=s.rhat, ess=s.ess, drift_z=s.drift_z,
        mala_acceptance=s.mala_acceptance, temperature=s.temperature,
        temperature_weighted=run.weighted_temperature, temperature_stderr=s.temperature_stderr,
        diverged=tuple(run.diverged_at), warnings=tuple(notes), config=replace(config),
        loss_trace=tuple(tuple(float(v) for v in row) for row in s.loss_trace),
        llc_trace=tuple(tuple(float(v) for v in row) for row in s.kept),
        vectorized=run.vectorized, chain_backend=run.chain_backend,
    )


def estimate_llc(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    config: SGLDConfig | None = None,
    *,
    seed: int = 0,
    n: int | None = None,
) -> LLCResult:
    """Estimate the local learning coefficient of ``model`` at its current weights ``w*``.

    Implements ``lambda_hat = n beta (E[L_n(w)] - L_n(w*))`` (Lau et al. 2023, Definition 2)
    with localized SGLD; each draw contributes ``n beta (L_B(w_t) - L_B(w*))`` on its minibatch.

    Parameters
    ----------
    model : torch.nn.Module
        At the point ``w*`` (normally a trained local minimum); never modified.
    loss_fn : callable
        ``loss_fn(model(inputs), targets) -> scalar`` mean negative log-likelihood in nats per
        example (the LLC is defined for a log loss; another loss gives a rescaled value).
    data : (inputs, targets) or iterable of such batches
        The ``n`` examples ``L_n`` averages over.
    config : SGLDConfig, optional
    seed : int
        Non-negative; seeds minibatches and noise (and the probes of the default ``gamma``);
        same seed, same result.
    n : int, optional
        The number of examples ``L_n`` averages over when it is not the number of rows of
        ``data`` (a language model's windows hold ``rows x context`` predicted tokens); sets the
        default ``n beta = n / log n`` and is recorded.

    Returns
    -------
    LLCResult

    Raises
    ------
    ConfigError
        Bad settings or seed, a train-mode model with dropout/batch norm, a loss that is not a
        scalar mean.
    DataError
        Empty or mismatched data.
    """
    seed = check_seed(seed)
    cfg = config or SGLDConfig()
    _check_model(model)
    x, y = as_tensors(data)
    n = int(x.shape[0]) if n is None else _check_n(n)
    loss_init = _check_loss(model, loss_fn, x, y)
    resolved = resolve_sgld(cfg, model, loss_fn, x, y, n=n, seed=seed)
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)
    run = run_chains(model, loss_fn, x, y, resolved, generator=gen)
    summary = summarise(run, nbeta=resolved.nbeta, n_burnin=cfg.n_burnin, thin=cfg.thin,
                        n_draws=cfg.n_draws)
    notes = diagnose(summary, run.diverged_at, step_size=cfg.step_size)
    for note in notes:
        warnings.warn(note, ConvergenceWarning, stacklevel=2)
    n_params = int(sum(p.numel() for k, p in model.named_parameters() if k in resolved.params))
    return _result(summary, run, resolved, cfg, n=n, n_params=n_params, loss_init=loss_init,
                   notes=notes)
