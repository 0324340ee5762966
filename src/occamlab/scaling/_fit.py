"""``fit``: multi-start robust fitting of a law, polished to full precision, with uncertainty.

Pipeline: validate the data -> evaluate every start of the grid -> run all starts together with the
batched L-BFGS -> polish the best few with SciPy's L-BFGS-B on the objective divided by its own
value (so the stopping test is relative, see REFERENCE.md) -> intervals: Hessian (default) or
bootstrap (each resample started from the optimum and a few nearby points, all resamples batched).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from occamlab.errors import ConfigError, ConvergenceWarning, DataError
from occamlab.scaling._data import check_values, column
from occamlab.scaling._forms import LawForm
from occamlab.scaling._objective import LOSSES, Objective
from occamlab.scaling._optimize import minimize_batched
from occamlab.scaling._result import FitResult

__all__ = ["fit", "hessian_covariance", "prepare_data"]

Array = np.ndarray


def prepare_data(
    form: LawForm,
    data: Any,
    *,
    target: str,
    columns: Mapping[str, str] | None,
    source: str,
) -> tuple[dict[str, Array], Array]:
    """Pull the form's inputs and the target out of a DataFrame or mapping, checked."""
    columns = dict(columns or {})
    unknown = [k for k in columns if k not in form.inputs]
    if unknown:
        raise ConfigError(f"{form.name} has inputs {list(form.inputs)}; got columns for {unknown}")
    inputs = {k: column(data, columns.get(k, k), source=source, role=f"input {k}") for k in form.inputs}
    y = column(data, target, source=source, role="target")
    named = {columns.get(k, k): v for k, v in inputs.items()}
    named[target] = y
    positive = [columns.get(k, k) for k in form.inputs] if form.positive_inputs else []
    if form.space == "log":
        positive.append(target)
    check_values(named, positive=positive, source=source, min_rows=len(form.params) + 1)
    z = form.transform(y)
    if not np.all(np.isfinite(z)):
        bad = np.flatnonzero(~np.isfinite(z))[:10].tolist()
        raise DataError(f"{source}: target {target!r} cannot be transformed for {form.name} "
                        f"({form.formula}) in rows {bad}")
    prep = form.prepare(inputs)
    for k, v in prep.items():
        if not np.all(np.isfinite(v)):
            bad = np.flatnonzero(~np.isfinite(v))[:10].tolist()
            raise DataError(f"{source}: input {k} is not finite after transformation in rows {bad}")
    return inputs, y


def _polish(obj: Objective, x0: Array, lo: Array, hi: Array, scale: float,
            max_iter: int = 1000) -> tuple[Array, float, bool]:
    """SciPy L-BFGS-B on the objective divided by ``scale`` with tight tolerances."""
    def fg(x: Array) -> tuple[float, Array]:
        f, g = obj.value_grad(x)
        return f / scale, g / scale

    bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None) for a, b in zip(lo, hi, strict=True)]
    res = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": max_iter, "maxls": 40})
    f, g = fg(res.x)
    pg = np.abs(res.x - np.clip(res.x - g, lo, hi)).max()
    return res.x, f * scale, bool(res.success or pg < 1e-6)


def hessian_covariance(obj: Objective, theta: Array, free: Array) -> Array | None:
    """Asymptotic covariance of the internal parameters (free ones; fixed rows/cols are 0).

    ``(J^T J)^-1 * n/(n-p) * mean(psi^2) / mean(psi')^2`` (Huber 1981, the M-estimator sandwich
    with the Gauss-Newton Hessian). For least squares this is ``s^2 (J^T J)^-1``. For the Huber
    loss, ``mean(psi')`` (the share of residuals inside delta) is kernel-smoothed, so that a small
    delta (an L1-like fit) gives the least-absolute-deviation variance ``1/(4 f(0)^2)`` instead of
    dividing by a count of the few residuals that land inside delta.
    """
    r = obj.residuals(theta)
    n = len(r)
    J = obj.form.jacobian(theta[None, :], obj.prep)[0][:, free]
    p = J.shape[1]
    if n <= p:
        return None
    if obj.loss == "huber":
        d = obj.delta
        psi = np.clip(r, -d, d)
        sd = min(np.std(r), stats.iqr(r) / 1.349) if np.std(r) > 0 else 0.0
        h = 1.06 * sd * n ** (-0.2) if sd > 0 else 1e-12
        dpsi = np.mean(stats.norm.cdf((d - r) / h) - stats.norm.cdf((-d - r) / h))
        scale = np.mean(psi**2) / max(dpsi, 1e-300) ** 2
    else:
        scale = np.mean(r**2)
    scale *= n / (n - p)
    try:
        JtJ_inv = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(JtJ_inv)) or np.any(np.diag(JtJ_inv) < 0):
        return None
    P = len(theta)
    cov = np.zeros((P, P))
    cov[np.ix_(free, free)] = JtJ_inv * scale
    return cov


def _resample_weights(n: int, n_boot: int, groups: Array | None, rng: np.random.Generator) -> Array:
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    labels, inv = np.unique(groups, return_inverse=True)
    g = len(labels)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(float)  # (B, g)
    return counts[:, inv]


def fit(
    form: LawForm,
    data: Any,
    *,
    target: str = "loss",
    columns: Mapping[str, str] | None = None,
    loss: str = "huber",
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
    """Fit ``form`` to measurements.

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
    loss : {"huber", "lsq"}
        Huber (Hoffmann et al.; ``delta`` in residual units) or least squares.
    starts : optional
        Starting points: rows of internal values (log of positive scale parameters) or dicts of
        natural values. Default: the form's grid (Hoffmann et al.'s 4,500 starts for Chinchilla).
    fixed : mapping, optional
        Parameters held at given natural values (say, a known irreducible loss ``E``).
    bootstrap : int
        Number of bootstrap resamples (0: Hessian-based intervals only).
    groups : str or sequence, optional
        Resample whole groups (a column name, such as model size) instead of points.
    level : float
        Interval coverage.
    seed : int
        Seed of the bootstrap resampling.
    max_polish_iter : int
        Iterations of the final L-BFGS-B polish of the best candidates (on the objective divided by
        its own value, tolerances 1e-15 / 1e-11).

    Returns
    -------
    FitResult
    """
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not delta > 0:
        raise ConfigError(f"delta must be > 0, got {delta}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise ConfigError(f"bootstrap must be a non-negative integer, got {bootstrap}")
    inputs, y = prepare_data(form, data, target=target, columns=columns, source=source)
    n = len(y)
    z = form.transform(y)
    prep = form.prepare(inputs)
    obj = Objective(form, prep, z, np.ones((1, n)), loss=loss, delta=delta)
    P = len(form.params)
    lo, hi = form.internal_bounds()
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in form.param_names]
    if unknown:
        raise ConfigError(f"cannot fix {unknown}: {form.name} has parameters {list(form.param_names)}")
    for k, v in fixed.items():
        j = form.param_names.index(k)
        iv = form.to_internal({**{p: 1.0 for p in form.param_names}, k: v})[j]
        lo[j] = hi[j] = iv
    free = np.array([p not in fixed for p in form.param_names])

    # ---- starts -------------------------------------------------------------------------------
    if starts is None:
        X0 = form.default_starts(inputs, y)
    else:
        rows_ = [form.to_internal(s) if isinstance(s, Mapping) else np.asarray(s, float) for s in starts]
        X0 = np.atleast_2d(np.array(rows_, dtype=float))
        if X0.shape[1] != P:
            raise ConfigError(f"each start needs {P} values ({list(form.param_names)}), got {X0.shape[1]}")
    X0 = np.clip(X0, lo, hi)
    res = minimize_batched(obj, X0, lo, hi)
    if not np.isfinite(res.f).any():
        raise DataError(f"{source}: the objective is not finite at any start; check the data and starts")
    order = np.argsort(np.where(np.isfinite(res.f), res.f, np.inf))
    best_f = float(res.f[order[0]])
    # polish the best few distinct candidates
    cands: list[Array] = []
    cand_conv: list[bool] = []
    for i in order[: min(len(order), 50)]:
        # only candidates that could still beat the best after polishing
        if not np.isfinite(res.f[i]) or res.f[i] > best_f * (1 + 1e-3) + 1e-300:
            break
        if all(np.max(np.abs(res.x[i] - c)) > 1e-4 for c in cands):
            cands.append(res.x[i])
            cand_conv.append(bool(res.converged[i]))
        if len(cands) == 3:
            break
    pscale = abs(best_f) if best_f > 0 else 1.0
    # a candidate is converged if the batched stage stopped on its own test or the polish did
    polished = [(x, f, ok or c) for (x, f, ok), c in
                zip((_polish(obj, c, lo, hi, pscale, max_polish_iter) for c in cands), cand_conv, strict=True)]
    theta, f_best, conv = min(polished, key=lambda t: t[1])
    # starts whose batched result is within 1e-6 (relative) of the polished optimum
    n_at_best = max(int(np.sum(res.f <= f_best + 1e-6 * abs(f_best))), 1)

    warn: list[str] = []
    if not conv:
        warn.append("the optimizer did not converge at the best start; the optimum may be inaccurate")

    def _near(v: float, b: float) -> bool:
        return bool(np.isfinite(b) and abs(v - b) <= 1e-6 * max(1.0, abs(b)))

    at_bound = tuple(name for j, name in enumerate(form.param_names)
                     if free[j] and (_near(theta[j], lo[j]) or _near(theta[j], hi[j])))
    if at_bound:
        warn.append(f"parameter(s) {list(at_bound)} at a bound of the allowed range: "
                    "the law may not describe these data, or they cannot identify it")
    # a distinct optimum almost as good as the best: the data do not pin the law down
    for i in order[1:]:
        fi = float(res.f[i])
        if not np.isfinite(fi) or fi > f_best * (1 + 1e-3) + 1e-15:
            break
        if np.max(np.abs(res.x[i] - theta)) > 0.1 * max(1.0, float(np.max(np.abs(theta)))):
            warn.append("another, distinct optimum has an objective within 0.1% of the best: "
                        "the parameters are weakly identified (see the intervals)")
            break

    cov = hessian_covariance(obj, theta, free)
    natural = form.to_natural(theta)
    q = stats.norm.ppf(0.5 + level / 2)
    boot: Array | None = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        g_arr: Array | None = None
        if isinstance(groups, str):
            g_arr = column(data, groups, source=source, role="bootstrap groups")
        elif groups is not None:
            g_arr = np.asarray(groups)
        W = _resample_weights(n, bootstrap, g_arr, rng)
        sd_int: Array = np.sqrt(np.diag(cov)) if cov is not None else 0.05 * np.maximum(1.0, np.abs(theta))
        sd_int = np.where(np.isfinite(sd_int), sd_int, 0.05)
        per = 1 + n_nearby
        starts_b = np.repeat(theta[None, :], bootstrap * per, axis=0)
        jitter = rng.standard_normal((bootstrap, n_nearby, P)) * sd_int
        starts_b.reshape(bootstrap, per, P)[:, 1:, :] += jitter
        starts_b = np.clip(starts_b, lo, hi)
        objb = Objective(form, prep, z, np.repeat(W, per, axis=0), loss=loss, delta=delta)
        rb = minimize_batched(objb, starts_b, lo, hi, groups=np.repeat(np.arange(bootstrap), per))
        fb = np.where(np.isfinite(rb.f), rb.f, np.inf).reshape(bootstrap, per)
        pick = np.argmin(fb, axis=1)
        boot = rb.x.reshape(bootstrap, per, P)[np.arange(bootstrap), pick]
        ok = np.isfinite(fb[np.arange(bootstrap), pick])
        if not ok.all():
            warn.append(f"{int((~ok).sum())} bootstrap resamples failed and were dropped")
        boot = boot[ok]
        a = (1 - level) / 2
        lo_i, hi_i = np.quantile(boot, a, axis=0), np.quantile(boot, 1 - a, axis=0)
        nat_b = form.to_natural(boot)
        se_nat = np.std(nat_b, axis=0, ddof=1)
        what = "groups" if g_arr is not None else "points"
        method = (f"bootstrap percentile, {len(boot)} resamples of {what}, each refitted from the "
                  f"optimum and {n_nearby} nearby starts")
    elif cov is not None:
        sd_int = np.sqrt(np.diag(cov))
        lo_i, hi_i = theta - q * sd_int, theta + q * sd_int
        # delta method for natural stderr: d exp(t) = exp(t) dt
        se_nat = np.where([p.log for p in form.params], natural * sd_int, sd_int)
        method = ("Hessian (asymptotic M-estimator covariance, Gauss-Newton Hessian); "
                  "log-scale parameters' intervals are exp of symmetric intervals in log")
    else:
        lo_i = hi_i = se_nat = np.full(P, np.nan)
        method = "none: the Hessian is singular (the data do not identify every parameter)"
        warn.append("the covariance is singular: the data do not identify every parameter")
    ci_lo, ci_hi = form.to_natural(lo_i), form.to_natural(hi_i)
    for j in range(P):
        if not free[j]:
            ci_lo[j] = ci_hi[j] = natural[j]
            se_nat[j] = 0.0
    if not conv:
        warnings.warn(warn[0], ConvergenceWarning, stacklevel=2)

    names = form.param_names
    return FitResult(
        form=form.name, formula=form.formula, param_names=names,
        params={k: float(v) for k, v in zip(names, natural, strict=True)},
        stderr={k: float(v) for k, v in zip(names, se_nat, strict=True)},
        ci={k: (float(a), float(b)) for k, a, b in zip(names, ci_lo, ci_hi, strict=True)},
        level=level, interval_method=method, objective=obj.value(theta), loss=loss, delta=delta,
        space=form.space, n_points=n, n_starts=len(X0), n_starts_at_best=n_at_best,
        converged=conv, at_bound=at_bound, fixed=tuple(fixed), warnings=tuple(warn),
        inputs={k: tuple(map(float, v)) for k, v in inputs.items()},
        observed=tuple(map(float, y)), residuals=tuple(map(float, obj.residuals(theta))),
        theta=tuple(map(float, theta)),
        covariance=None if cov is None else tuple(tuple(map(float, r)) for r in cov),
        bootstrap=None if boot is None else tuple(tuple(map(float, r)) for r in boot),
        form_options=_form_options(form),
        config={"target": target, "columns": dict(columns or {}), "bootstrap": bootstrap,
                "groups": groups if isinstance(groups, str) else (None if groups is None else "given"),
                "seed": seed, "n_nearby": n_nearby, "fixed": fixed},
    )


def _form_options(form: LawForm) -> dict[str, Any]:
    if form.name == "loss-to-loss":
        return {"E_x": float(form.E_x), "E_y": float(form.E_y)}  # type: ignore[attr-defined]
    return {}
