"""The analysis of ``lora-finetune`` runs: a pure function of the stored runs (``occam report``).

1. Per (backend, base model, rank, D_F) the best learning rate's held-out loss (nats per token).
2. The multiplicative joint law ``L = A (N/N0)^-alpha (D_F/D0)^-beta + E`` for each rank with
   at least 6 such points (N0, D0: geometric means of the data, so ``A`` is the reducible loss
   at the data's centre), and over every rank at once with a rank factor ``(r/r0)^-gamma``: the
   rank effect. Fitted by :func:`occamlab.scaling.fit` (Huber loss in log space, bootstrap
   intervals over the points).
3. Rank 1 against every higher rank at each D_F: the difference of held-out losses with a 95%
   interval from the paired per-window losses (the same held-out windows), else from the two
   standard errors.
4. The ledger: tokens trained, sampled and evaluated, by base model and in all, and their cost
   at the price table given (:mod:`._ledger`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from occamlab._render import Table, fmt
from occamlab.reports import Section

__all__ = ["analyze", "best_points", "fit_joint", "rank_comparison", "LOCAL_ONLY"]

Z95 = 1.959963984540054
LOCAL_ONLY = (
    "A hosted service fine-tunes LoRA adapters of its own base models; it cannot train a model "
    "from scratch. Of the transfer protocol (Hernandez et al. 2021) it runs the fine-tuned side, "
    "L(D_F, N, r). These parts need training_backend = \"local\": pretraining the base models "
    "(and any model smaller or of another shape than the service offers), the from-scratch "
    "baseline on the fine-tuning data that the effective data transferred D_T is measured "
    "against, and full or frozen-embedding fine-tuning (the `finetune` experiment).")


def _order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A sort key of (backend, base model, number, number): names as text, numbers as numbers."""
    return tuple(str(k) if isinstance(k, str) else (float(k) if k is not None else -1.0)
                 for k in key)


def _done(records: Sequence[Any]) -> list[Any]:
    return [r for r in records if r.status == "done" and r.result]


def best_points(records: Sequence[Any]) -> list[dict[str, Any]]:
    """One point per (backend, base model, rank, D_F): the run with the lowest held-out loss
    over learning rates, with ``n_lrs`` (how many were tried) and its record."""
    cells: dict[tuple[Any, ...], list[Any]] = {}
    for r in _done(records):
        res = r.result
        key = (res["training_backend"], res["base_model"], res["lora_rank"],
               res["finetune_tokens"])
        cells.setdefault(key, []).append(r)
    out = []
    for key, runs in sorted(cells.items(), key=lambda kv: _order(kv[0])):
        best = min(runs, key=lambda r: r.result["heldout_nll"])
        out.append({"backend": key[0], "base_model": key[1], "rank": key[2], "D_F": key[3],
                    "N": best.result.get("n_params"), "loss": best.result["heldout_nll"],
                    "se": best.result.get("heldout_nll_se"), "lr": best.result["lr"],
                    "n_lrs": len(runs), "record": best})
    return out


def fit_joint(points: Sequence[dict[str, Any]], *, with_rank: bool, bootstrap: int = 100,
              seed: int = 0) -> Any:
    """Fit the multiplicative joint law to ``points`` (see the module docstring); ``None`` when
    they cannot identify it (fewer than 6 points, or N or D_F not varying)."""
    from occamlab.scaling import CustomForm, Param, fit

    pts = [p for p in points if p["N"] and p["loss"] is not None and math.isfinite(p["loss"])]
    n_params = 5 if with_rank else 4
    if (len(pts) < n_params + 1 or len({p["N"] for p in pts}) < 2
            or len({p["D_F"] for p in pts}) < 2 or (with_rank and len({p["rank"] for p in pts}) < 2)):
        return None
    N = np.array([float(p["N"]) for p in pts])
    D = np.array([float(p["D_F"]) for p in pts])
    r = np.array([float(p["rank"]) for p in pts])
    L = np.array([float(p["loss"]) for p in pts])
    n0, d0, r0 = (float(np.exp(np.mean(np.log(x)))) for x in (N, D, r))
    params = [Param("A", 1e-6, 1e3, log=True), Param("alpha", 0.0, 3.0), Param("beta", 0.0, 3.0)]
    if with_rank:
        params.append(Param("gamma", -1.0, 2.0))
    params.append(Param("E", 0.0, float(L.min())))

    def law(p: dict[str, Any], N: Any, D: Any, r: Any) -> Any:
        out = p["A"] * (N / n0) ** (-p["alpha"]) * (D / d0) ** (-p["beta"])
        return (out * (r / r0) ** (-p["gamma"]) if with_rank else out) + p["E"]

    starts = [[a, al, be, *([g] if with_rank else []), e * float(L.min())]
              for a in (0.1, 0.5, 2.0) for al in (0.05, 0.3, 1.0) for be in (0.05, 0.3, 1.0)
              for g in ((0.0, 0.2) if with_rank else (0.0,)) for e in (0.0, 0.5, 0.9)]
    form = CustomForm("lora-finetune" + ("-rank" if with_rank else ""), law, params,
                      inputs=("N", "D", "r"), starts=starts)
    res = fit(form, {"N": N, "D": D, "r": r, "loss": L}, bootstrap=bootstrap, seed=seed)
    return res, {"N0": n0, "D0": d0, "r0": r0}


def _window_nll(record: Any) -> np.ndarray | None:
    try:
        doc = json.loads((Path(record.folder) / "heldout.json").read_text(encoding="utf-8"))
        return np.asarray(doc["window_nll"], dtype=float)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def rank_comparison(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank 1 against each higher rank at the same (backend, base model, D_F): ``diff =
    L_r - L_1`` (negative: rank r is better) with a 95% interval (paired windows if stored)."""
    by = {(p["backend"], p["base_model"], p["D_F"], p["rank"]): p for p in points}
    rows = []
    for (be, bm, d, rank), p in sorted(by.items(), key=lambda kv: _order(kv[0])):
        one = by.get((be, bm, d, 1))
        if rank == 1 or one is None:
            continue
        a, b = _window_nll(one["record"]), _window_nll(p["record"])
        if a is not None and b is not None and a.shape == b.shape and a.size > 1:
            delta = b - a
            diff, se, how = float(delta.mean()), float(delta.std(ddof=1) / math.sqrt(delta.size)), "paired"
        else:
            diff = p["loss"] - one["loss"]
            se = math.hypot(one["se"] or math.nan, p["se"] or math.nan)
            how = "unpaired"
        rows.append({"backend": be, "base_model": bm, "D_F": d, "rank": rank,
                     "loss_rank1": one["loss"], "loss": p["loss"], "diff": diff,
                     "ci": [diff - Z95 * se, diff + Z95 * se], "interval": how})
    return rows


def _fits(points: list[dict[str, Any]]) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Per-rank and joint fits: results (plain JSON), tables, flags."""
    results: dict[str, Any] = {}
    tables: list[Any] = []
    flags: list[str] = []
    for rank in sorted({p["rank"] for p in points}):
        got = fit_joint([p for p in points if p["rank"] == rank], with_rank=False)
        if got is not None:
            res, ref = got
            results[f"rank {rank}"] = _fit_json(res, ref)
            tables.append(res)
            if not res.valid:
                flags.append(f"fit at rank {rank}: " + "; ".join(res.warnings or ("not valid",)))
    got = fit_joint(points, with_rank=True)
    if got is not None:
        res, ref = got
        results["joint"] = _fit_json(res, ref)
        tables.append(res)
        if not res.valid:
            flags.append("joint fit: " + "; ".join(res.warnings or ("not valid",)))
    return results, tables, flags


def _fit_json(res: Any, ref: dict[str, float]) -> dict[str, Any]:
    return {"formula": res.formula, **ref, "n_points": res.n_points, "valid": res.valid,
            "params": {k: {"value": res.params[k], "ci": list(res.ci[k]), "level": res.level}
                       for k in res.param_names}}


def _points_table(points: list[dict[str, Any]]) -> Table:
    rows = [[p["backend"], p["base_model"], fmt(p["N"]) if p["N"] else "?", p["rank"], p["D_F"],
             fmt(p["lr"]), p["n_lrs"], fmt(p["loss"]), fmt(p["se"]) if p["se"] else ""]
            for p in points]
    return Table("Held-out loss at the best learning rate (nats per token)",
                 ["backend", "base model", "N", "rank", "D_F", "best lr", "lrs tried",
                  "held-out NLL", "s.e."], rows)


def _rank_table(rows: list[dict[str, Any]]) -> Table:
    body = [[r["backend"], r["base_model"], r["D_F"], r["rank"], fmt(r["loss_rank1"]),
             fmt(r["loss"]), fmt(r["diff"]), f"[{fmt(r['ci'][0])}, {fmt(r['ci'][1])}]",
             r["interval"]] for r in rows]
    return Table("Rank 1 against higher ranks (diff = L_r - L_1; negative: rank r is better)",
                 ["backend", "base model", "D_F", "rank r", "L_1", "L_r", "diff",
                  "95% interval", "interval"], body)


def analyze(records: Sequence[Any], *, prices: Any = None) -> Any:
    """The section and results of the stored ``lora-finetune`` runs (module docstring)."""
    from ._ledger import ledger_summary
    from ._suite import Analysis

    points = best_points(records)
    failed = [r for r in records if r.status == "failed"]
    fits, fit_tables, flags = _fits(points)
    ranks = rank_comparison(points)
    ledger = ledger_summary(records, prices)
    results = {"points": [{k: v for k, v in p.items() if k != "record"} for p in points],
               "fits": fits, "rank_comparison": ranks, "ledger": ledger.to_dict(),
               "failed_runs": [{"id": r.id, "error": r.error} for r in failed]}
    backends = sorted({p["backend"] for p in points})
    models = sorted({p["base_model"] for p in points})
    joint = fits.get("joint")
    if joint:
        g = joint["params"]["gamma"]
        headline = (f"rank exponent gamma = {fmt(g['value'])} [{fmt(g['ci'][0])}, "
                    f"{fmt(g['ci'][1])}]; beta (D_F) = {fmt(joint['params']['beta']['value'])}")
    else:
        headline = (f"{len(points)} fine-tuning points, no joint law (it needs 6 or more over "
                    "at least 2 base-model sizes and 2 D_F)" if points else "no finished runs")
    better = [r for r in ranks if r["ci"][1] < 0]
    verdict = [f"{len(ranks)} rank comparisons: a higher rank beat rank 1 beyond its 95% "
               f"interval in {len(better)}." if ranks else "No rank-1 comparison: no rank-1 runs "
               "beside higher ranks.", LOCAL_ONLY]
    section = Section(
        key="lora-finetune", title="LoRA fine-tuning: loss against D_F, N and rank",
        headline=headline, question=("How does held-out loss after LoRA fine-tuning fall with "
                                     "D_F, N and r; does rank 1 keep up?"),
        setup=[f"{len(_done(records))} runs done, {len(failed)} failed; backends: "
               f"{', '.join(backends) or '-'}; base models: {', '.join(models) or '-'}.",
               "Held-out loss: mean negative log-likelihood per token (nats) on the same "
               "held-out windows for every run of a tokenizer; the best learning rate per cell."],
        tables=[_points_table(points), *fit_tables, _rank_table(ranks), ledger],
        verdict=verdict, flags=flags + [f"run {r.id} failed: {r.error}" for r in failed],
        status="flagged" if flags or failed else "ok")
    return Analysis(results=results, section=section)
