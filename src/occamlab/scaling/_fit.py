"""``fit``: multi-start robust fitting of a law, polished to full precision, with uncertainty.

Pipeline, one pure step each:

1. :func:`~occamlab.scaling._problem.make_problem`: check the options and the data, build the
   objective and the bounds (fixed parameters pinned);
2. :func:`_multi_start`: every start of the grid (Hoffmann et al.'s 4,500 for Chinchilla) minimized
   together by the batched Levenberg-Marquardt of :mod:`occamlab.scaling._optimize`;
3. :func:`_polish`: the best few distinct candidates polished by SciPy's L-BFGS-B on the objective
   divided by its own value (so the stopping test is relative, see REFERENCE.md);
4. :func:`_diagnose`: converged, parameters at a bound, a distinct near-optimum, as warnings;
5. intervals (:mod:`occamlab.scaling._intervals`): Hessian (default) or bootstrap (each resample
   started from the optimum and a few nearby points, all resamples batched).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from occamlab.errors import ConvergenceWarning, DataError
from occamlab.scaling._forms import LawForm
from occamlab.scaling._intervals import Intervals, fit_intervals, hessian_covariance
from occamlab.scaling._objective import Objective
from occamlab.scaling._optimize import BatchResult, minimize_batched
from occamlab.scaling._problem import Problem, check_fit_options, make_problem, starting_points
from occamlab.scaling._result import FitResult

__all__ = ["fit", "hessian_covariance"]

Array = np.ndarray


@dataclass(frozen=True)
class _Optimum:
    """The polished optimum and what the multi-start stage knows about its neighbourhood."""

    theta: Array  # (P,) internal parameters
    objective: float  # the objective the optimizer minimized at theta
    converged: bool
    batch: BatchResult  # every start's batched result
    order: Array  # start indices, best first
    n_at_best: int


def _multi_start(problem: Problem, X0: Array, source: str) -> tuple[BatchResult, Array]:
    """All starts ``X0`` (S, P) at once; the batch and the start indices sorted by objective."""
    res = minimize_batched(problem.objective, X0, problem.lower, problem.upper)
    if not np.isfinite(res.f).any():
        raise DataError(f"{source}: the objective is not finite at any start; check the data and starts")
    return res, np.argsort(np.where(np.isfinite(res.f), res.f, np.inf))


def _candidates(batch: BatchResult, order: Array, limit: int = 3) -> tuple[list[Array], list[bool]]:
    """Up to ``limit`` distinct starts (max-norm apart by > 1e-4) whose objective is within 0.1% of
    the best, so that they could still beat it after polishing; and whether each had converged."""
    best_f = float(batch.f[order[0]])
    cands: list[Array] = []
    conv: list[bool] = []
    for i in order[: min(len(order), 50)]:
        if not np.isfinite(batch.f[i]) or batch.f[i] > best_f * (1 + 1e-3) + 1e-300:
            break
        if all(np.max(np.abs(batch.x[i] - c)) > 1e-4 for c in cands):
            cands.append(batch.x[i])
            conv.append(bool(batch.converged[i]))
        if len(cands) == limit:
            break
    return cands, conv


def _lbfgsb(obj: Objective, x0: Array, lo: Array, hi: Array, scale: float,
            max_iter: int = 1000) -> tuple[Array, float, bool]:
    """SciPy L-BFGS-B on ``f / scale`` with tolerances 1e-15 (relative decrease) and 1e-11
    (projected gradient); converged if SciPy says so or the projected gradient is below 1e-6."""
    def fg(x: Array) -> tuple[float, Array]:
        f, g = obj.value_grad(x)
        return f / scale, g / scale

    bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None) for a, b in zip(lo, hi, strict=True)]
    res = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": max_iter, "maxls": 40})
    f, g = fg(res.x)
    pg = np.abs(res.x - np.clip(res.x - g, lo, hi)).max()
    return res.x, f * scale, bool(res.success or pg < 1e-6)


def _polish(problem: Problem, batch: BatchResult, order: Array, max_iter: int) -> _Optimum:
    """Polish the best candidates of the batch; the best polished point is the optimum.

    A candidate is converged if the batched stage stopped on its own test or the polish did.
    ``n_at_best`` counts the starts whose batched objective is within 1e-6 (relative) of it.
    """
    cands, cand_conv = _candidates(batch, order)
    best_f = float(batch.f[order[0]])
    pscale = abs(best_f) if best_f > 0 else 1.0
    polished = [(x, f, polish_converged or c) for (x, f, polish_converged), c in zip(
        (_lbfgsb(problem.objective, c, problem.lower, problem.upper, pscale, max_iter) for c in cands),
        cand_conv, strict=True)]
    theta, f_best, conv = min(polished, key=lambda t: t[1])
    n_at_best = max(int(np.sum(batch.f <= f_best + 1e-6 * abs(f_best))), 1)
    return _Optimum(theta, f_best, conv, batch, order, n_at_best)


def _near(v: float, b: float) -> bool:
    return bool(np.isfinite(b) and abs(v - b) <= 1e-6 * max(1.0, abs(b)))


def _diagnose(problem: Problem, opt: _Optimum) -> tuple[tuple[str, ...], list[str]]:
    """Free parameters at a bound (within 1e-6 relative), and the warnings, in this order: not
    converged; at a bound; another, distinct optimum (max-norm distance > 10% of ``max(1, |theta|)``)
    within 0.1% of the best objective (the data do not pin the law down)."""
    theta, form = opt.theta, problem.form
    warn: list[str] = []
    if not opt.converged:
        warn.append("the optimizer did not converge at the best start; the optimum may be inaccurate")
    at_bound = tuple(name for j, name in enumerate(form.param_names)
                     if problem.free[j] and (_near(theta[j], problem.lower[j]) or _near(theta[j], problem.upper[j])))
    if at_bound:
        warn.append(f"parameter(s) {list(at_bound)} at a bound of the allowed range: "
                    "the law may not describe these data, or they cannot identify it")
    for i in opt.order[1:]:
        fi = float(opt.batch.f[i])
        if not np.isfinite(fi) or fi > opt.objective * (1 + 1e-3) + 1e-15:
            break
        if np.max(np.abs(opt.batch.x[i] - theta)) > 0.1 * max(1.0, float(np.max(np.abs(theta)))):
            warn.append("another, distinct optimum has an objective within 0.1% of the best: "
                        "the parameters are weakly identified (see the intervals)")
            break
    return at_bound, warn


def _form_options(form: LawForm) -> dict[str, Any]:
    if form.name == "loss-to-loss":
        return {"E_x": float(form.E_x), "E_y": float(form.E_y)}  # type: ignore[attr-defined]
    return {}


def _floats(v: Any) -> tuple[float, ...]:
    return tuple(map(float, v))


def _result(problem: Problem, opt: _Optimum, cov: Array | None, iv: Intervals, *, level: float,
            n_starts: int, at_bound: tuple[str, ...], warn: list[str], config: dict[str, Any]) -> FitResult:
    """Assemble the :class:`FitResult` (natural parameters, intervals, diagnostics, data)."""
    form, obj, theta = problem.form, problem.objective, opt.theta
    names = form.param_names
    return FitResult(
        form=form.name, formula=form.formula, param_names=names,
        params={k: float(v) for k, v in zip(names, form.to_natural(theta), strict=True)},
        stderr={k: float(v) for k, v in zip(names, iv.stderr, strict=True)},
        ci={k: (float(a), float(b)) for k, a, b in zip(names, iv.lower, iv.upper, strict=True)},
        level=level, interval_method=iv.method, objective=obj.value(theta), loss_fn=obj.loss_fn,
        delta=obj.delta, space=form.space, n_points=problem.n_points, n_starts=n_starts,
        n_starts_at_best=opt.n_at_best, converged=opt.converged, at_bound=at_bound,
        fixed=tuple(problem.fixed), warnings=tuple(warn),
        inputs={k: _floats(v) for k, v in problem.inputs.items()},
        observed=_floats(problem.y), residuals=_floats(obj.residuals(theta)), theta=_floats(theta),
        covariance=None if cov is None else tuple(_floats(r) for r in cov),
        bootstrap=None if iv.draws is None else tuple(_floats(r) for r in iv.draws),
        form_options=_form_options(form), config=config,
    )


def fit(
    form: LawForm,
    data: Any,
    *,
    target: str = "loss",
    columns: Mapping[str, str] | None = None,
    loss_fn: str = "huber",
    delta: float = 1e-3,
    starts: Sequence[Sequence[float]] | Sequence[Mapping[str, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    bootstrap: int = 0,
    groups: str | Sequence[Any] | None = None,
    n_nearby: int = 3,
    level: float = 0.95,
    seed: int = 0,
    max_polish_iter: int = 1000,
    source: str = "data",
) -> FitResult:
    r"""Fit ``form`` to measurements: minimize, over the internal parameters ``theta`` (``ln`` of
    positive scale parameters), :math:`f(\theta) = \frac{1}{n} \sum_i \rho(r_i)` with residuals
    :math:`r_i = g(\hat y_i(\theta)) - g(y_i)` (``g = ln`` for log-space forms, identity for linear
    ones) and ``rho`` the Huber loss (``r^2/2`` for ``|r| <= delta``, ``delta (|r| - delta/2)``
    beyond; Hoffmann et al. 2022) or least squares (``r^2/2``).

    Parameters
    ----------
    form : LawForm
        The law (``Chinchilla()``, ``PowerLaw()``, a ``CustomForm``, ...).
    data : pandas.DataFrame or mapping of arrays
        Columns named after the form's inputs (or mapped by ``columns``) and the ``target``.
    target : str
        Column of observed values (a loss in nats, a metric).
    columns : mapping, optional
        Form input name -> column name, e.g. ``{"N": "params", "D": "tokens"}``.
    loss_fn : {"huber", "lsq"}
        The robust loss function ``rho``: Huber (``delta`` in residual units) or least squares.
    delta : float
        Huber threshold, in residual units (log residuals for log-space forms); default 1e-3.
    starts : optional
        Starting points: rows of internal values (log of positive scale parameters) or dicts of
        natural values. Default: the form's grid (Hoffmann et al.'s 4,500 starts for Chinchilla).
    fixed : mapping, optional
        Parameters held at given natural values (say, a known irreducible loss ``E``).
    bootstrap : int
        Number of bootstrap resamples (0: Hessian-based intervals only).
    groups : str or sequence, optional
        Resample whole groups (a column name, such as model size) instead of points.
    n_nearby : int
        Extra starts per bootstrap resample, drawn around the optimum.
    level : float
        Interval coverage, in (0, 1).
    seed : int
        Seed of the bootstrap resampling (a non-negative integer).
    max_polish_iter : int
        Iterations of the final L-BFGS-B polish of the best candidates (on the objective divided by
        its own value, tolerances 1e-15 / 1e-11).
    source : str
        Name of the data in error messages (a file name, say).

    Returns
    -------
    FitResult
        Natural parameters, standard errors, intervals, the objective at the optimum, and the
        diagnostics ``converged``, ``at_bound``, ``warnings`` and ``valid``.

    Raises
    ------
    ConfigError
        A bad option (``loss_fn``, ``delta``, ``level``, ``bootstrap``, ``seed``, ``fixed``, ``starts``).
    DataError
        A missing, non-numeric, non-finite, constant or (where logs are taken) non-positive
        column; too few points; an objective not finite at any start. A ``ConvergenceWarning`` is
        issued when the optimizer did not converge at the best start.
    """
    seed = check_fit_options(loss_fn=loss_fn, delta=delta, level=level, bootstrap=bootstrap, seed=seed)
    problem = make_problem(form, data, target=target, columns=columns, loss_fn=loss_fn, delta=delta,
                           fixed=fixed, source=source)
    X0 = starting_points(problem, starts)
    batch, order = _multi_start(problem, X0, source)
    opt = _polish(problem, batch, order, max_polish_iter)
    at_bound, warn = _diagnose(problem, opt)
    cov = hessian_covariance(problem.objective, opt.theta, problem.free)
    iv = fit_intervals(problem, data, opt.theta, cov, bootstrap=bootstrap, groups=groups,
                       n_nearby=n_nearby, level=level, seed=seed, source=source)
    warn += iv.warnings
    if not opt.converged:
        warnings.warn(warn[0], ConvergenceWarning, stacklevel=2)
    config = {"target": target, "columns": dict(columns or {}), "bootstrap": bootstrap,
              "groups": groups if isinstance(groups, str) else (None if groups is None else "given"),
              "seed": seed, "n_nearby": n_nearby, "fixed": problem.fixed}
    return _result(problem, opt, cov, iv, level=level, n_starts=len(X0), at_bound=at_bound, warn=warn,
                   config=config)
