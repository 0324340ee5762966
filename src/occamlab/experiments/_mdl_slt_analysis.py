"""The analysis of the ``mdl-slt`` suite experiment: a pure function of its stored runs.

Part 1 reads each checkpoint's ``llc`` and ``compress`` results, marks the models whose LLC
failed its own diagnostics (left out of the fits, with the reason), and fits ``n_q = a + b LLC``
with Pearson's and Spearman's correlations, each with a bootstrap percentile interval over models:
per (scheme, epsilon), per scheme (both tolerances), per task, and pooled (``n_q`` standardised
within each scheme and tolerance, so bits and ranks can be pooled). Part 2 reads the
``volume-law`` runs.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from occamlab.errors import DataError

from ._numbers import estimate
from ._spec import PlannedRun
from ._suite import StoredRuns

__all__ = ["analyze_runs", "fit_relation", "model_key"]


def model_key(p: dict[str, Any]) -> str:
    """``text d16 L1 h2 @ step 600``: one Part 1 model."""
    return f"{p['task']} d{p['d_model']} L{p['n_layer']} h{p['n_head']} @ step {p['step']}"


def _scheme_key(scheme: str, eps: float) -> str:
    return f"{scheme} @ eps {eps:g}"


# ---- reading the runs ----------------------------------------------------------------------
def _done(runs: StoredRuns, stage: str) -> list[tuple[PlannedRun, Any]]:
    return runs.done(stage)


def _curve(runs: StoredRuns, train: PlannedRun) -> list[dict[str, Any]]:
    """The training run's ``metrics.jsonl`` rows (step, loss, val_loss on evaluations)."""
    p = runs.path(train, "metrics.jsonl")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{p}: cannot read the training run's metrics ({exc})") from None
    return [json.loads(s) for s in lines if s.strip()]


def _llc_fields(res: dict[str, Any]) -> dict[str, Any]:
    keys = ("llc", "llc_stderr", "rhat", "ess", "temperature", "step_size", "nbeta", "n_draws",
            "valid", "warnings", "n_params", "loss_init")
    return {k: res.get(k) for k in keys}


def _exclusion(m: dict[str, Any]) -> str | None:
    """Why a model's LLC is left out of the fits (``None``: kept)."""
    llc = m.get("llc")
    if llc is None:
        return m.get("llc_error", "no LLC estimate")
    if llc.get("llc") is None or not math.isfinite(llc["llc"]):
        return "the LLC estimate is not finite"
    if not llc.get("valid", False):
        return "; ".join(llc.get("warnings") or ["failed its diagnostics"])
    return None


def _models(config: Any, runs: StoredRuns, train_runs: list[PlannedRun]
            ) -> tuple[list[dict[str, Any]], dict[tuple[Any, ...], PlannedRun]]:
    """Part 1's models (one per task x size x snapshot) and the training runs by task/size."""
    trains = {tuple(t.point[k] for k in ("task", "d_model", "n_layer", "n_head")): t
              for t in train_runs}
    models: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, t in trains.items():
        for step in config.snapshots:
            models[(*key, step)] = {"task": key[0], "d_model": key[1], "n_layer": key[2],
                                    "n_head": key[3], "N": t.point["N"], "step": step,
                                    "n_q": {}, "loss": None, "llc": None}
    for r, rec in _done(runs, "measure"):
        if r.experiment not in ("llc", "compress"):
            continue  # the volume-law runs share the stage
        p = r.point
        key = (p["task"], p["d_model"], p["n_layer"], p["n_head"], p["step"])
        m = models.get(key)
        if m is None:
            continue
        if r.experiment == "compress":
            m["n_q"][_scheme_key(p["scheme"], p["epsilon"])] = rec.result.get("n_q")
            m["loss"] = rec.result.get("loss_base")
        elif r.experiment == "llc" and p.get("role") == "model":
            m["llc"] = _llc_fields(rec.result)
    for r, why in runs.failed("measure"):
        p = r.point
        m = models.get((p.get("task"), p.get("d_model"), p.get("n_layer"), p.get("n_head"),
                        p.get("step")))
        if m is not None and r.experiment == "llc" and p.get("role") == "model":
            m["llc_error"] = f"the LLC run failed: {why}"
    out = []
    for m in models.values():
        m["name"] = model_key(m)
        m["excluded"] = _exclusion(m)
        out.append(m)
    return out, trains


# ---- the relation --------------------------------------------------------------------------
def _stats(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, intercept, Pearson, Spearman) of ``y`` on ``x``; NaN where undefined."""
    from scipy import stats

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return (math.nan,) * 4
    slope, intercept = np.polyfit(x, y, 1)
    return (float(slope), float(intercept), float(np.corrcoef(x, y)[0, 1]),
            float(stats.spearmanr(x, y).statistic))


def fit_relation(x: Any, y: Any, groups: Any = None, *, bootstrap: int, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any]:
    """``y = a + b x`` with Pearson and Spearman correlations, each with a percentile interval
    over ``bootstrap`` resamples of the groups (a group: one model; its rows go together)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    g = np.arange(len(x)) if groups is None else np.asarray(groups)
    ids = np.unique(g)
    rows = {i: np.flatnonzero(g == i) for i in ids}
    point = _stats(x, y)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap):
        pick = np.concatenate([rows[i] for i in rng.choice(ids, size=len(ids), replace=True)])
        boot.append(_stats(x[pick], y[pick]))
    arr = np.array(boot, dtype=float).reshape(-1, 4)
    q = 100 * (1 - level) / 2
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr).all(axis=1)
        lo = np.percentile(arr[ok], q, axis=0) if ok.any() else [math.nan] * 4
        hi = np.percentile(arr[ok], 100 - q, axis=0) if ok.any() else [math.nan] * 4
    names = ("slope", "intercept", "pearson", "spearman")
    out: dict[str, Any] = {n: estimate(point[i], (lo[i], hi[i]), level)
                           for i, n in enumerate(names)}
    out.update(n_points=int(len(x)), n_models=int(len(ids)), n_boot_ok=int(ok.sum()))
    return out


def _holds(f: dict[str, Any]) -> str:
    """``holds`` (slope and both correlations' intervals above 0), ``negative``, ``not
    detected`` or ``too few models``."""
    lows = [f[k]["ci"][0] for k in ("slope", "pearson", "spearman")]
    highs = [f[k]["ci"][1] for k in ("slope", "pearson", "spearman")]
    if any(v is None for v in lows + highs):
        return "too few models"
    if all(v > 0 for v in lows):
        return "holds"
    if all(v < 0 for v in highs):
        return "negative"
    return "not detected"


def _rows(models: list[dict[str, Any]], keys: list[str], tasks: tuple[str, ...]
          ) -> tuple[list[float], list[float], list[int], list[str]]:
    """(LLC, n_q, model index, scheme key) of the kept models' measurements."""
    xs, ys, gs, ks = [], [], [], []
    for i, m in enumerate(models):
        if m["excluded"] or m["task"] not in tasks:
            continue
        for k in keys:
            nq = m["n_q"].get(k)
            if nq is not None:
                xs.append(float(m["llc"]["llc"]))
                ys.append(float(nq))
                gs.append(i)
                ks.append(k)
    return xs, ys, gs, ks


def _zscore(ys: list[float], ks: list[str]) -> list[float]:
    y = np.asarray(ys, dtype=float)
    out = y.copy()
    for k in set(ks):
        sel = np.asarray([kk == k for kk in ks])
        sd = y[sel].std()
        out[sel] = (y[sel] - y[sel].mean()) / (sd if sd > 0 else 1.0)
    return [float(v) for v in out]


def _fits(config: Any, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    both = ("text", "process")
    keys = [_scheme_key(s, e) for s in config.schemes for e in config.epsilons]
    groups: list[tuple[str, str, list[str], tuple[str, ...], bool]] = []
    for s in config.schemes:
        for e in config.epsilons:
            groups.append((s, f"{e:g}", [_scheme_key(s, e)], both, False))
    for s in config.schemes:
        groups.append((s, "pooled", [_scheme_key(s, e) for e in config.epsilons], both, False))
    for s in config.schemes:
        for e in config.epsilons:
            for t in both:
                groups.append((s, f"{e:g}", [_scheme_key(s, e)], (t,), False))
    groups.append(("pooled (standardised)", "pooled", keys, both, True))
    out = []
    for j, (scheme, eps, ks, tasks, standardise) in enumerate(groups):
        xs, ys, gs, kk = _rows(models, ks, tasks)
        if standardise:
            ys = _zscore(ys, kk)
        f = fit_relation(xs, ys, gs, bootstrap=config.bootstrap, seed=config.seed + j)
        out.append({"scheme": scheme, "epsilon": eps, "tasks": "+".join(tasks),
                    "standardised": standardise, **f, "verdict": _holds(f)})
    return out


# ---- the protocol sweep and the trajectory -----------------------------------------------------
def _sensitivity(config: Any, runs: StoredRuns, models: list[dict[str, Any]]) -> dict[str, Any]:
    """The uncalibrated LLC at each (n beta, step) of the sweep, against the calibrated one."""
    by_name = {m["name"]: m for m in models}
    rows = []
    for r, rec in _done(runs, "measure"):
        p = r.point
        if p.get("role") != "sensitivity":
            continue
        ref = by_name.get(model_key(p))
        cal = ref["llc"]["llc"] if ref and ref.get("llc") else None
        llc = rec.result.get("llc")
        rows.append({"model": model_key(p), "nbeta_factor": p["nbeta_factor"],
                     "nbeta": rec.result.get("nbeta"), "step_size": p["step_size"], "llc": llc,
                     "llc_stderr": rec.result.get("llc_stderr"), "rhat": rec.result.get("rhat"),
                     "temperature": rec.result.get("temperature"),
                     "valid": rec.result.get("valid"), "warnings": rec.result.get("warnings"),
                     "calibrated_llc": cal,
                     "ratio": None if (cal in (None, 0) or llc is None) else llc / cal})
    rows.sort(key=lambda d: (d["model"], -d["nbeta_factor"], d["step_size"]))
    return {"rows": rows, "n_models": len({d["model"] for d in rows}),
            "by_setting": _by_setting(config, rows, by_name)}


def _by_setting(config: Any, rows: list[dict[str, Any]], by_name: dict[str, Any]
                ) -> list[dict[str, Any]]:
    """Per setting: the median ratio to the calibrated LLC and (3+ models) Spearman with n_q."""
    from scipy import stats

    key = _scheme_key(config.schemes[0], config.epsilons[0])
    out = []
    for f in config.sensitivity_nbeta:
        for s in config.sensitivity_steps:
            sel = [d for d in rows if d["nbeta_factor"] == f and d["step_size"] == s]
            ratios = [d["ratio"] for d in sel if d["ratio"] is not None]
            pairs = [(d["llc"], by_name[d["model"]]["n_q"].get(key)) for d in sel
                     if d["llc"] is not None and by_name.get(d["model"])]
            pairs = [(a, b) for a, b in pairs if b is not None]
            rho = None
            if len(pairs) >= 3 and len({b for _, b in pairs}) > 1:
                rho = float(stats.spearmanr(*zip(*pairs, strict=True)).statistic)
            out.append({"nbeta_factor": f, "step_size": s, "n_models": len(sel),
                        "median_ratio": float(np.median(ratios)) if ratios else None,
                        "n_valid": sum(1 for d in sel if d["valid"]),
                        "spearman_with_n_q": rho, "n_q_key": key})
    return out


def _trajectory(config: Any, runs: StoredRuns, trains: dict[Any, PlannedRun],
                key: tuple[Any, ...]) -> dict[str, Any]:
    if key not in trains:
        return {"error": "no trajectory run"}
    train = trains[key]
    pts = []
    for r, rec in _done(runs, "measure"):
        p = r.point
        if (r.experiment == "llc" and p.get("role") == "model"
                and (p["task"], p["d_model"], p["n_layer"], p["n_head"]) == key):
            pts.append({"step": p["step"], "llc": rec.result.get("llc"),
                        "llc_stderr": rec.result.get("llc_stderr"),
                        "valid": rec.result.get("valid"), "loss_init": rec.result.get("loss_init")})
    pts.sort(key=lambda d: d["step"])
    done = {t.id for t, _ in _done(runs, "train")}
    curve = _curve(runs, train) if train.id in done else []
    return {"model": f"{key[0]} d{key[1]} L{key[2]} h{key[3]}", "N": train.point["N"],
            "points": pts,
            "loss": [{"step": c["step"], "loss": c["loss"]} for c in curve],
            "val_loss": [{"step": c["step"], "val_loss": c["val_loss"]} for c in curve
                         if "val_loss" in c]}


# ---- Part 2 ----------------------------------------------------------------------------------
def _volume(config: Any, runs: StoredRuns) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from occamlab.slt import VolumeLaw

    rows, objs = [], {}
    failed = {r.point.get("case"): why for r, why in runs.failed("measure")
              if r.experiment == "volume-law"}
    for r, rec in _done(runs, "measure"):
        if r.experiment != "volume-law":
            continue
        v = VolumeLaw.from_dict(runs.read_json(r, "volume.json"))
        objs[v.name] = v
        res = rec.result
        rows.append({"case": v.name, "n_params": v.n_params, "truth_lambda": v.truth_lambda,
                     "truth_m": v.truth_m, "lambda": estimate(v.lambda_, v.lambda_ci, v.level),
                     "m": v.multiplicity, "m_share": v.m_share, "m_identified": v.m_identified,
                     "m_free": estimate(v.m_free, v.m_free_ci, v.level),
                     "lambda_at_true_m": estimate(v.lambda_at_true_m, v.lambda_at_true_m_ci,
                                                  v.level),
                     "relative_error": v.relative_error,
                     "within_10pct": v.relative_error is not None and v.relative_error <= 0.10,
                     "eps_range": [v.eps[0], v.eps[-1]],
                     "decades": math.log10(v.eps[-1] / v.eps[0]),
                     "code": _against_formula(v, "redundancy"),
                     "free_energy": _against_formula(v, "free_energy"),
                     "llc": estimate(res.get("llc"), _se_ci(res), 0.95,
                                     valid=res.get("llc_valid"), warnings=res.get("llc_warnings")),
                     "n_live": v.n_live, "n_runs": v.n_runs, "n_calls": v.n_calls,
                     "seconds": v.seconds, "warnings": list(v.warnings)})
    order = {c: i for i, c in enumerate(config.volume_cases)}
    rows.sort(key=lambda d: order.get(d["case"], 99))
    return rows + [{"case": c, "error": why} for c, why in failed.items()], objs


def _se_ci(res: dict[str, Any]) -> tuple[float, float] | None:
    v, se = res.get("llc"), res.get("llc_stderr")
    if v is None or se is None:
        return None
    return (v - 2 * se, v + 2 * se)


def _against_formula(v: Any, what: str) -> dict[str, Any]:
    """``R_n`` (or ``F_n``) against ``lambda log n - (m - 1) log log n`` (exact values): the
    slope of the line through them (1 when the formula's n-dependence is right) and the range
    of the difference (the O(1) term)."""
    if v.truth_lambda is None:
        return {}
    n = np.asarray(v.n_values)
    f = v.truth_lambda * np.log(n) - (v.truth_m - 1) * np.log(np.log(n))
    y = np.asarray(getattr(v, what), dtype=float)
    ok = np.isfinite(y)
    slope = float(np.polyfit(f[ok], y[ok], 1)[0]) if ok.sum() >= 3 else None
    diff = y[ok] - f[ok]
    return {"slope": slope, "offset_min": float(diff.min()) if diff.size else None,
            "offset_max": float(diff.max()) if diff.size else None}


def analyze_runs(config: Any, runs: StoredRuns, train_runs: list[PlannedRun],
                 trajectory: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results (plain JSON) and the objects the figures need (the volume laws), from the
    planned training runs and the key ``(task, d_model, n_layer, n_head)`` of the one whose
    snapshots make the LLC trajectory."""
    models, trains = _models(config, runs, train_runs)
    kept = [m for m in models if not m["excluded"]]
    volume, vobjs = _volume(config, runs)
    results: dict[str, Any] = {
        "models": models, "n_models": len(models), "n_kept": len(kept),
        "excluded": [{"model": m["name"], "reason": m["excluded"]} for m in models
                     if m["excluded"]],
        "fits": _fits(config, models),
        "sensitivity": _sensitivity(config, runs, models),
        "trajectory": _trajectory(config, runs, trains, trajectory),
        "volume": volume,
        "failed_runs": len(runs.failed("train")) + len(runs.failed("measure")),
        "n_q_uncertainty": "bisection bracket: the level below n_q fails, so the threshold lies "
                           "in (n_q - 1, n_q]",
    }
    return results, {"volume": vobjs}
