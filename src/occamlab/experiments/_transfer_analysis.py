"""The analysis of the ``transfer`` suite experiment: a pure function of its stored runs.

:func:`results_of` returns the results (plain JSON: every number an :func:`estimate` with its
interval, or a plain count) and the result objects the page draws its figures from. The claims
tested, and how:

- *beta does not depend on the source*: ``beta`` fitted from each source with the same
  from-scratch runs and seed, so the bootstrap draws are paired (the scratch resamples are
  shared) and the difference has a paired percentile interval;
- *alpha tracks distributional proximity*: ``alpha`` of each source of the Markov family against
  its exact KL divergence rate from the target, and the least-squares slope of ``alpha`` on the
  divergence with an interval over the (again paired) bootstrap draws.

Runs with a non-positive ``D_T`` (fine-tuning did no better than scratch: "ossification") or an
infinite one (the fine-tuned loss is below the from-scratch curve's asymptote) stay in the
results and on the page, and are left out of the log-space fit of the law, which says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from occamlab.errors import OccamError

from ._numbers import estimate
from ._spec import PlannedRun
from ._suite import StoredRuns

__all__ = ["results_of", "PUBLISHED", "behind_at", "model_key"]

PUBLISHED: dict[str, Any] = {
    "hernandez": {"pair": "text to Python", "k": 1.9e4, "alpha": 0.18, "beta": 0.38,
                  "mixed_alpha": 0.096,
                  "note": "Hernandez et al. (2021), fig. 1: N non-embedding parameters, D in "
                          "characters; pretrained on text + non-Python code, alpha = 0.096"},
    "kappa": {"train_to_train": [0.88, 1.13], "train_to_test": [0.36, 1.08],
              "note": "Brandfonbrener et al. (2024): the ranges of kappa they report"},
}


# ---- the stored runs as tables ---------------------------------------------------------------
def model_key(model: Any) -> str:
    """``(d_model, n_layer, n_head)`` as text: ``"16x2x2"``."""
    return "x".join(str(int(v)) for v in model)


def _frames(runs: StoredRuns) -> dict[str, Any]:
    """DataFrames of the finished runs: ``scratch``, ``pretrain``, ``finetune``, ``eval``, and the
    data runs' results by distribution key."""
    import pandas as pd

    rows: dict[str, list[dict[str, Any]]] = {"scratch": [], "pretrain": [], "finetune": [],
                                             "eval": []}
    for stage in ("train", "finetune"):
        for r, rec in runs.done(stage):
            res, pt = rec.result or {}, r.point
            row = {"dist": pt["dist"], "model": model_key(pt["model"]), "N": float(pt["N"]),
                   "D": float(pt["D"]), "source": pt.get("source"), "mode": pt.get("mode"),
                   "rank": pt.get("rank"), "shift": pt.get("shift")}
            if pt["role"] == "eval":
                row["loss"] = float(res["loss"])
            else:
                row.update(loss=float(res["best_val_loss"]), steps=int(res["steps"]),
                           best_step=int(res["best_step"]), tokens=int(res["tokens_seen"]),
                           stopped_early=bool(res["stopped_early"]),
                           trainable=int(res["n_params_trainable"]),
                           eval_every=int(r.config.get("eval_every", 0) or
                                          r.config.get("train", {}).get("eval_every", 0)))
            rows[pt["role"]].append(row)
    out: dict[str, Any] = {k: pd.DataFrame(v) for k, v in rows.items()}
    out["data"] = {}
    return out


def _data_results(runs: StoredRuns, data_runs: dict[str, PlannedRun]
                  ) -> dict[str, dict[str, Any]]:
    """The stored results of the ``transfer-data`` runs, by the plan's key for each."""
    done = {r.id: dict(rec.result or {}) for r, rec in runs.done("data")}
    return {key: done[r.id] for key, r in data_runs.items() if r.id in done}


def _protocol(frames: dict[str, Any]) -> dict[str, Any]:
    """Runs that ended at their step cap while still improving: not at their validation optimum."""
    out: dict[str, Any] = {}
    total_tokens = 0
    for role in ("scratch", "finetune", "pretrain"):
        df = frames[role]
        if len(df) == 0:
            out[role] = {"n": 0, "at_cap": 0}
            continue
        at_cap = (~df.stopped_early) & (df.best_step >= df.steps - df.eval_every)
        out[role] = {"n": len(df), "at_cap": int(at_cap.sum()) if role != "pretrain" else None,
                     "median_steps": float(df.steps.median())}
        total_tokens += int(df.tokens.sum())
    out["training_tokens"] = total_tokens
    out["n_eval"] = len(frames["eval"])
    return out


# ---- transfer fits ---------------------------------------------------------------------------
def _law_estimates(res: Any) -> dict[str, Any]:
    law = res.law
    if law is None:
        return {"error": f"no law: {sum(res.used)} runs with a positive finite D_T, the fit "
                         "needs at least 4"}
    return {k: estimate(law.params[k], law.ci[k], law.level,
                        fixed=k in law.fixed) for k in ("k", "alpha", "beta")}


def _status(d_t: float) -> str:
    if not math.isfinite(d_t):
        return "beyond the scratch asymptote"
    return "transfer" if d_t > 0 else "ossified (D_T <= 0)"


def _transfer_entry(res: Any, ft: Any) -> dict[str, Any]:
    """One source's law and every run's D_E, D_T and status (ossified runs kept)."""
    pts = [{"N": n, "D_F": f, "loss": lf, "D_E": de, "D_T": dt, "fraction": fr, "in_fit": u,
            "status": _status(dt), "model": m}
           for n, f, lf, de, dt, fr, u, m in zip(res.n, res.d_f, res.loss_ft, res.d_e, res.d_t,
                                                 res.fraction, res.used, ft.model, strict=True)]
    n_oss = sum(p["status"].startswith("ossified") for p in pts)
    top = {k: max(f.inputs["x"]) for k, f in res.scratch.items()}  # largest scratch D by size
    for p in pts:  # D_E past the scratch ladder: read off the scratch law's extrapolation
        p["extrapolated"] = bool(math.isfinite(p["D_E"]) and p["D_E"] > top[f"{p['N']:g}"])
    return {**_law_estimates(res), "n_runs": len(pts), "n_used": int(sum(res.used)),
            "n_ossified": n_oss, "n_beyond": sum(p["status"].startswith("beyond") for p in pts),
            "n_extrapolated": sum(p["extrapolated"] for p in pts),
            "largest_scratch_d": max(top.values()) if top else None,
            "points": pts, "valid": res.valid, "warnings": list(res.warnings),
            "scratch": {k: {p: v for p, v in f.params.items()} for k, f in res.scratch.items()}}


def _draws(res: Any) -> np.ndarray | None:
    if res.law is None or res.law.bootstrap is None:
        return None
    return np.array(res.law.bootstrap, dtype=float)


def _paired(a: np.ndarray | None, b: np.ndarray | None, j: int, point: float,
            level: float = 0.95) -> dict[str, Any]:
    """``point`` with the percentile interval of ``b[:, j] - a[:, j]`` over paired draws."""
    if a is None or b is None:
        return estimate(point, None, level, n_draws=0)
    d = b[:, j] - a[:, j]
    d = d[np.isfinite(d)]
    if len(d) < 10:
        return estimate(point, None, level, n_draws=len(d))
    q = (1 - level) / 2
    return estimate(point, (np.quantile(d, q), np.quantile(d, 1 - q)), level, n_draws=len(d))


def _main(config: Any, frames: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The law from each source, and the paired differences of beta and alpha."""
    from occamlab.scaling import fit_transfer

    sc = frames["scratch"]
    ft = frames["finetune"]
    target = sc[sc.dist == "target"] if len(sc) else sc
    out: dict[str, Any] = {"sources": {}}
    objs: dict[str, Any] = {}
    for src in config.sources:
        sel = ft[(ft.dist == "target") & (ft.source == src) & (ft["mode"] == "full")] \
            if len(ft) else ft
        try:
            res = fit_transfer(target, sel, bootstrap=config.bootstrap, seed=config.seed,
                               source=f"{src} to {config.target}")
        except OccamError as exc:
            out["sources"][src] = {"error": str(exc), "n_runs": len(sel)}
            continue
        objs[src] = res
        out["sources"][src] = _transfer_entry(res, sel)
    a, b = (objs.get(s) for s in config.sources[:2])
    if a is not None and b is not None and a.law is not None and b.law is not None:
        for j, name in ((2, "beta"), (1, "alpha")):
            point = b.law.params[name] - a.law.params[name]
            out[f"{name}_difference"] = _paired(_draws(a), _draws(b), j, point)
    return out, objs


# ---- LoRA and frozen embeddings --------------------------------------------------------------
def behind_at(d_f: list[float], gap: list[float], tol: float) -> tuple[float | None, str]:
    """The ``D_F`` at which ``gap`` (a mode's loss minus full fine-tuning's, nats) first exceeds
    ``tol``, interpolated linearly in ``ln D_F``; with ``"within"``, or ``"from the start"`` (it
    is behind at the smallest ``D_F``: the value is that ``D_F``, an upper bound) or ``"never"``
    (not behind within the ladder: the value is ``None``)."""
    if gap[0] > tol:
        return d_f[0], "from the start"
    for i in range(1, len(gap)):
        if gap[i] > tol:
            t = (tol - gap[i - 1]) / (gap[i] - gap[i - 1])
            return float(math.exp(math.log(d_f[i - 1]) + t * math.log(d_f[i] / d_f[i - 1]))), \
                "within"
    return None, "never"


def _mode_entry(config: Any, mode: str, rank: int, g: Any, full: Any, curve: Any
                ) -> dict[str, Any]:
    """One fine-tuning mode of one model: its losses, gaps to full fine-tuning and D_T by D_F,
    and where it falls behind."""
    from occamlab.scaling import effective_data_transferred

    d_f = [float(x) for x in g.D]
    gap = [float(lv - full.get(d, np.nan)) for d, lv in zip(g.D, g.loss, strict=True)]
    d_t = (effective_data_transferred(curve, g.loss, g.D).tolist() if curve is not None
           else [None] * len(g))
    trainable = int(g.trainable.iloc[0])
    entry: dict[str, Any] = {"mode": mode if mode != "lora" else f"LoRA r={rank}",
                             "rank": rank if mode == "lora" else None, "trainable": trainable,
                             "D_F": d_f, "loss": [float(x) for x in g.loss], "gap": gap,
                             "D_T": d_t}
    if mode != "full" and all(np.isfinite(gap)):
        d, status = behind_at(d_f, gap, config.behind_tolerance)
        entry.update(behind=estimate(d, None, note="one seed: no interval"), behind_status=status,
                     capacity=estimate(None if d is None else d / trainable, None,
                                       note="D_F per trained parameter"))
    return entry


def _lora(config: Any, frames: dict[str, Any], objs: dict[str, Any]) -> list[dict[str, Any]]:
    ft = frames["finetune"]
    main = objs.get(config.sources[0])
    out: list[dict[str, Any]] = []
    for m in config.lora_models:
        sel = ft[(ft.source == config.sources[0]) & (ft.model == model_key(m))] if len(ft) else ft
        if main is None or len(sel) == 0:
            out.append({"model": model_key(m), "error": "no runs or no from-scratch fit"})
            continue
        n = float(sel.N.iloc[0])
        curve = main.scratch.get(f"{n:g}")
        full = sel[sel["mode"] == "full"].set_index("D").loss
        modes = [_mode_entry(config, str(mode), int(rank), g.sort_values("D"), full, curve)
                 for (mode, rank), g in sel.groupby(["mode", sel["rank"].fillna(0)], sort=False)]
        modes.sort(key=lambda e: (e["mode"] != "full", e["mode"] != "frozen-embedding",
                                  e["rank"] or 0))
        r1: dict[str, Any] | None = next((e for e in modes if e["rank"] == 1), None)
        out.append({"model": model_key(m), "N": n, "modes": modes,
                    "rank1_matches_at_smallest": None if r1 is None else
                    bool(r1["gap"][0] <= config.behind_tolerance),
                    "rank1_gap_at_smallest": None if r1 is None else r1["gap"][0],
                    "tolerance": config.behind_tolerance})
    return out


# ---- the process family ----------------------------------------------------------------------
def _family_truth(config: Any) -> tuple[dict[str, Any], list[float]]:
    """The target chain's exact entropy rate and each source's divergence rates, in nats."""
    from occamlab._units import bits_to_nats
    from occamlab.processes import analyze, kl_divergence_rate

    from .transfer_data import markov_family

    p = config.process
    target = markov_family(p.symbols, p.scale, p.family_seed, p.far_seed, 0.0)
    info = analyze(target)
    truth = {"h_nats": bits_to_nats(info.entropy_rate), "exact": info.entropy_rate_exact,
             "symbols": p.symbols, "members": []}
    kls = []
    for s in p.shifts:
        src = markov_family(p.symbols, p.scale, p.family_seed, p.far_seed, s)
        kl = bits_to_nats(kl_divergence_rate(target, src))
        kls.append(kl)
        truth["members"].append({"shift": s, "kl_nats": kl,
                                 "kl_reverse_nats": bits_to_nats(kl_divergence_rate(src, target)),
                                 "source_h_nats": bits_to_nats(analyze(src).entropy_rate)})
    return truth, kls


def _slope(alphas: list[float], kls: list[float], draws: list[np.ndarray | None]
           ) -> dict[str, Any]:
    """Least-squares slope of alpha on the divergence, with a percentile interval over the paired
    bootstrap draws (rows where every member refitted)."""
    x = np.array(kls)
    if len(x) < 2:
        return estimate(None, None, error="fewer than 2 sources with a fitted law")
    point = float(np.polyfit(x, alphas, 1)[0])
    if any(d is None for d in draws):
        return estimate(point, None, n_draws=0)
    A = np.column_stack([d[:, 1] for d in draws if d is not None])  # (B, members)
    ok = np.all(np.isfinite(A), axis=1)
    if ok.sum() < 10:
        return estimate(point, None, n_draws=int(ok.sum()))
    xc = x - x.mean()
    slopes = (A[ok] - A[ok].mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return estimate(point, (np.quantile(slopes, 0.025), np.quantile(slopes, 0.975)),
                    n_draws=int(ok.sum()))


def _family(config: Any, frames: dict[str, Any], data: dict[str, Any]
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    from scipy import stats

    from occamlab.scaling import fit_transfer

    truth, kls = _family_truth(config)
    sc, ft = frames["scratch"], frames["finetune"]
    target = sc[sc.dist == "markov:0"] if len(sc) else sc
    members, objs, fitted = [], {}, []
    for s, kl, t in zip(config.process.shifts, kls, truth["members"], strict=True):
        sel = ft[(ft.dist == "markov:0") & (ft["shift"] == s)] if len(ft) else ft
        entry: dict[str, Any] = {**t}
        try:
            res = fit_transfer(target, sel, bootstrap=config.bootstrap, seed=config.seed,
                               source=f"markov shift {s:g}")
            objs[f"{s:g}"] = res
            entry.update(_transfer_entry(res, sel))
            if res.law is not None:
                fitted.append((kl, res.law.params["alpha"], _draws(res)))
        except OccamError as exc:
            entry.update(error=str(exc), n_runs=len(sel))
        members.append(entry)
    out = {"truth": truth, "members": members,
           "slope": _slope([f[1] for f in fitted], [f[0] for f in fitted], [f[2] for f in fitted])}
    if len(fitted) >= 3:
        rho = stats.spearmanr([f[0] for f in fitted], [f[1] for f in fitted])
        out["spearman"] = {"rho": float(rho.statistic), "p": float(rho.pvalue), "n": len(fitted)}
    out["floor"] = _floor_check(truth, frames, data.get("markov:0", {}))
    return out, objs


def _floor_check(truth: dict[str, Any], frames: dict[str, Any], data: dict[str, Any]
                 ) -> dict[str, Any]:
    """Every model trained or fine-tuned on the target chain against the exact floor: a loss
    below the entropy rate by more than 3 standard errors of the held-out set's own Bayes loss
    (or below that Bayes loss by as much) can only be a bug."""
    import pandas as pd

    rows = [f[f.dist == "markov:0"] for f in (frames["scratch"], frames["finetune"]) if len(f)]
    df = pd.concat(rows) if rows else pd.DataFrame({"loss": []})
    h = truth["h_nats"]
    se = float(data.get("val_bayes_se", 0.0) or 0.0)
    bayes = data.get("val_bayes_loss")
    tol = 3 * se
    loss = df.loss.to_numpy(dtype=float)
    below_h = loss < h - tol
    below_bayes = loss < (bayes - tol) if bayes is not None else np.zeros(len(loss), bool)
    return {"n_checked": len(loss), "h_nats": h, "val_bayes_loss": bayes, "val_bayes_se": se,
            "tolerance": tol, "min_margin_h": float(np.min(loss - h)) if len(loss) else None,
            "min_margin_bayes": float(np.min(loss - bayes)) if len(loss) and bayes else None,
            "n_below": int((below_h | below_bayes).sum()), "n_below_h_raw": int((loss < h).sum())}


# ---- loss-to-loss ----------------------------------------------------------------------------
def _rank_correlation(x: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """Spearman's rho of the paired losses: the law assumes y rises with x (rho > 0); a
    negative rho means the pair moves the other way and no kappa describes it."""
    from scipy import stats

    if len(x) < 3:
        return None
    r = stats.spearmanr(x, y)
    return {"rho": float(r.statistic), "p": float(r.pvalue), "n": len(x)}


def _l2l(config: Any, frames: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from occamlab.scaling import fit_loss_to_loss

    sc, ev = frames["scratch"], frames["eval"]
    src = config.sources[0]
    out: dict[str, Any] = {}
    objs: dict[str, Any] = {}
    if not len(sc):
        return {"error": "no from-scratch runs"}, objs
    x = sc[sc.dist == src][["N", "D", "loss"]].rename(columns={"loss": "x"})
    pairs = {"train_to_train": sc[sc.dist == "target"][["N", "D", "loss"]],
             "train_to_test": ev[["N", "D", "loss"]] if len(ev) else None}
    for name, y in pairs.items():
        lo, hi = PUBLISHED["kappa"][name]
        if y is None:
            out[name] = {"error": "no evaluation runs", "published_range": [lo, hi]}
            continue
        df = x.merge(y.rename(columns={"loss": "y"}), on=["N", "D"])
        points = [[float(a), float(b)] for a, b in zip(df.x, df.y, strict=True)]
        rank = _rank_correlation(df.x.to_numpy(float), df.y.to_numpy(float))
        try:
            res = fit_loss_to_loss(df, x="x", y="y", bootstrap=config.bootstrap,
                                   seed=config.seed, source=name.replace("_", "-"))
        except OccamError as exc:
            out[name] = {"error": str(exc), "n_models": len(df), "published_range": [lo, hi],
                         "points": points, "spearman": rank}
            continue
        law = res.law
        objs[name] = res
        out[name] = {"kappa": estimate(law.params["kappa"], law.ci["kappa"], law.level),
                     "K": estimate(law.params["K"], law.ci["K"], law.level),
                     "E_x": res.fit_x.params["E"], "E_y": res.fit_y.params["E"],
                     "n_models": law.n_points, "published_range": [lo, hi],
                     "points": points, "spearman": rank,
                     "in_published_range": bool(lo <= res.kappa <= hi),
                     "valid": res.valid, "warnings": list(res.warnings)}
    return out, objs


# ---- the claims --------------------------------------------------------------------------------
def _claims(main: dict[str, Any], family: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    diff = main.get("beta_difference")
    if diff is None or diff["ci"][0] is None:
        out["beta_source_independent"] = {"verdict": "untested"}
    else:
        lo, hi = diff["ci"]
        out["beta_source_independent"] = {
            "verdict": "consistent" if lo <= 0 <= hi else "contradicted",
            "largest_difference_allowed": max(abs(lo), abs(hi))}
    s = family.get("slope", {})
    lo, hi = s.get("ci", (None, None)) or (None, None)
    if lo is None or hi is None:
        verdict = "untested"
    else:
        verdict = "rises" if lo > 0 else "falls" if hi < 0 else "no detectable trend"
    out["alpha_tracks_proximity"] = {"verdict": verdict}
    return out


def _scratch_points(frames: dict[str, Any]) -> list[dict[str, Any]]:
    sc = frames["scratch"]
    if not len(sc):
        return []
    return [{"dist": r.dist, "model": r.model, "N": r.N, "D": r.D, "loss": r.loss,
             "steps": r.steps, "best_step": r.best_step} for r in sc.itertuples()]


def results_of(config: Any, runs: StoredRuns, data_runs: dict[str, PlannedRun]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results dictionary (see the module doc) and the objects the figures need."""
    frames = _frames(runs)
    data = _data_results(runs, data_runs)
    failed = {s: len(runs.failed(s)) for s in ("data", "train", "finetune")}
    main, main_objs = _main(config, frames)
    family, family_objs = _family(config, frames, data)
    l2l, l2l_objs = _l2l(config, frames)
    results = {"failed_runs": failed, "protocol": _protocol(frames), "main": main,
               "lora": _lora(config, frames, main_objs), "process": family, "loss_to_loss": l2l,
               "claims": _claims(main, family), "published": PUBLISHED,
               "runs": {"scratch": _scratch_points(frames)},
               "data": {k: {kk: vv for kk, vv in v.items() if kk != "sizes"}
                        for k, v in data.items()}}
    objects = {"main": main_objs, "process": family_objs, "loss_to_loss": l2l_objs,
               "frames": frames}
    return results, objects
