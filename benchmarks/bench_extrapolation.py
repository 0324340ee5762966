"""Calibrated against old extrapolation intervals on the bundled public sweeps (issue 19).

Porian et al. (2024), tuned RefinedWeb sweep: hold out the two largest model sizes. Gadre et al.
(2024): on each of the three corpora, hold out the runs in the top decade of training compute (the
largest compute), for the C4 validation loss. Each: Chinchilla (and, with --forms, Kaplan with an
irreducible term and the size-coupled Chinchilla as candidates chosen by backtest error) fitted on
the rest; backtests along the held-out scale calibrate the intervals. Prints the tables and writes
benchmarks/results/extrapolation.json.

    PYTHONPATH=src python benchmarks/bench_extrapolation.py [--forms] [--loss-to-loss]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _summary(name: str, ex: object) -> dict:
    obs = np.array(ex.observed)  # type: ignore[attr-defined]
    pred = np.array(ex.calibrated_predicted)  # type: ignore[attr-defined]
    abs_err = np.abs(pred / obs - 1)
    old_w, new_w = ex.median_half_width  # type: ignore[attr-defined]
    cal = ex.calibration  # type: ignore[attr-defined]
    lo, hi = np.array(ex.calibrated_lower), np.array(ex.calibrated_upper)  # type: ignore[attr-defined]
    return {"abs_errors": abs_err.tolist(), "half_widths": ((hi - lo) / (2 * pred)).tolist(),
            "covered": ((lo <= obs) & (obs <= hi)).tolist(),
            "old_covered": ((np.array(ex.lower) <= obs) & (obs <= np.array(ex.upper))).tolist(),  # type: ignore[attr-defined]
            "old_half_widths": ((np.array(ex.upper) - np.array(ex.lower))  # type: ignore[attr-defined]
                                / (2 * np.array(ex.predicted))).tolist(),  # type: ignore[attr-defined]
            "case": name, "n_held_out": len(obs), "form": cal.form,
            "forms": dict(zip(cal.forms, cal.form_rms_error, strict=True)),
            "old_coverage": ex.coverage, "calibrated_coverage": ex.calibrated_coverage,  # type: ignore[attr-defined]
            "median_abs_rel_error": float(np.median(abs_err)),
            "old_median_half_width": old_w, "calibrated_median_half_width": new_w,
            "ratio_calibrated": new_w / float(np.median(abs_err)),
            "growth": cal.growth, "power": cal.power, "n_backtests": cal.n_backtests,
            "backtest_coverage": cal.coverage, "backtest_old_coverage": cal.old_coverage}


def loss_to_loss(n_joint: int = 100) -> list[dict]:
    """Gadre et al., C4 validation -> Penn Treebank loss, fitted without the top decade of compute:
    held-out coverage of the old (E fixed) and the joint-bootstrap intervals."""
    from occamlab.scaling import fit_loss_to_loss, load_dataset

    gadre, out = load_dataset("gadre2024"), []
    for corpus in ("c4_original", "rpj", "rw_original"):
        df = gadre[gadre["dataset"] == corpus].reset_index(drop=True)
        test = (df["C"] > df["C"].max() / 10).to_numpy()
        kw = dict(x="loss_c4_val", y="loss_paloma_ptb", n="params", d="tokens")
        old = fit_loss_to_loss(df[~test], **kw)  # type: ignore[arg-type]
        new = fit_loss_to_loss(df[~test], joint=n_joint, **kw)  # type: ignore[arg-type]
        xs, ys = df["loss_c4_val"][test].to_numpy(), df["loss_paloma_ptb"][test].to_numpy()
        row: dict = {"case": f"loss-to-loss gadre2024 {corpus}", "n_held_out": int(test.sum())}
        for name, res, kind in (("old_law", old, "law"), ("old_observation", old, "observation"),
                                ("joint_observation", new, "observation")):
            p = res.predict(xs, kind=kind)
            lo, hi, v = np.array(p.lower), np.array(p.upper), np.array(p.value)
            row[f"{name}_covered"] = ((lo <= ys) & (ys <= hi)).tolist()
            row[f"{name}_half_width"] = ((hi - lo) / (2 * v)).tolist()
        row["abs_rel_error"] = np.abs(v / ys - 1).tolist()
        print(json.dumps(row))
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    from occamlab.experiments.published_fits import TUNED, _select
    from occamlab.scaling import Chinchilla, Kaplan, extrapolation_check, load_dataset
    from occamlab.scaling._forms_nd import CoupledChinchilla

    ap = argparse.ArgumentParser()
    ap.add_argument("--forms", action="store_true", help="also Kaplan+E and coupled Chinchilla")
    ap.add_argument("--out", default="benchmarks/results/extrapolation.json")
    ap.add_argument("--loss-to-loss", action="store_true", help="also the joint loss-to-loss check")
    args = ap.parse_args(argv)
    forms = (Kaplan(irreducible=True), CoupledChinchilla()) if args.forms else ()
    out, t0 = [], time.time()
    porian = _select(load_dataset("porian2024"), TUNED)
    ex = extrapolation_check(Chinchilla(), porian, by="n", n_holdout=2, target="loss",
                             columns={"N": "n", "D": "tokens"}, calibrate=True, forms=forms)
    print(ex, "\n")
    out.append(_summary("porian2024 tuned, two largest N held out", ex))
    gadre = load_dataset("gadre2024")
    for corpus in ("c4_original", "rpj", "rw_original"):
        df = gadre[gadre["dataset"] == corpus].reset_index(drop=True)
        top = float(df["C"].max())
        k = int(np.unique(df["C"][df["C"] > top / 10]).size)
        ex = extrapolation_check(Chinchilla(), df, by="C", n_holdout=k, target="loss_c4_val",
                                 columns={"N": "params", "D": "tokens"}, calibrate=True, forms=forms)
        print(ex, "\n")
        out.append(_summary(f"gadre2024 {corpus}, top decade of C held out ({k} runs)", ex))
    for o in out:
        print(json.dumps({k: v for k, v in o.items() if not isinstance(v, list)}))
    g = [o for o in out if o["case"].startswith("gadre")]
    pooled = {k: sum((o[k] for o in g), []) for k in ("abs_errors", "half_widths", "covered",
                                                       "old_covered", "old_half_widths")}
    med_err = float(np.median(pooled["abs_errors"]))
    gadre = {"case": "gadre2024 pooled", "n_held_out": len(pooled["covered"]),
             "old_coverage": float(np.mean(pooled["old_covered"])),
             "calibrated_coverage": float(np.mean(pooled["covered"])),
             "median_abs_rel_error": med_err,
             "old_median_half_width": float(np.median(pooled["old_half_widths"])),
             "calibrated_median_half_width": float(np.median(pooled["half_widths"])),
             "ratio_calibrated": float(np.median(pooled["half_widths"])) / med_err}
    print(json.dumps(gadre))
    out.append(gadre)
    if args.loss_to_loss:
        out += loss_to_loss()
    Path(args.out).write_text(json.dumps({"cases": out, "seconds": time.time() - t0}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
