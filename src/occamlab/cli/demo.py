"""``occam demo``: the main job on bundled real data; writes an HTML report."""

from __future__ import annotations

import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the main job on bundled real data and write its report",
                       description="Fit scaling laws to bundled real measurements (Porian et al. 2024, "
                                   "Gadre et al. 2024) and write report.html, results.json and figures.")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the Chinchilla fit")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)


def _run(args: Any) -> int:
    from occamlab.experiments.scaling_demo import Config, execute

    out = execute(Config(bootstrap=args.bootstrap, seed=args.seed), args.out,
                  progress=lambda m: print(m, file=sys.stderr))
    s = out.summary
    print("\nSummary")
    print("  Chinchilla (Porian tuned): " + ", ".join(f"{k}={v:.4g}" for k, v in s["chinchilla_params"].items()))
    print(f"  N_opt ~ C^a: Approach 3 a={s['approach3_a']:.3f}; Approach 2 tuned a={s['isoflop_a_tuned']:.3f} "
          f"(published 0.497), Kaplan-like a={s['isoflop_a_kaplan']:.3f} (published 0.834)")
    print(f"  loss-to-loss kappa (C4 val -> PTB): {s['loss_to_loss_kappa']:.3f}")
    print(f"  downstream verdicts: {s['downstream_counts']}")
    print(f"\nreport: {out.report}\nresults: {out.results}")
    return 0
