"""The page section of the ``chinchilla`` suite experiment: tables, figures and verdicts written
from its results dictionary (the numbers on the page are the numbers in ``results.json``)."""

from __future__ import annotations

from typing import Any

from occamlab._render import Table
from occamlab.reports import Figure, Section, figure

from ._numbers import fmt, fmt_ci

__all__ = ["section", "TITLE", "QUESTION"]

TITLE = "Chinchilla on our own models"
QUESTION = ("The seed's third post opens with Chinchilla: for a compute budget C, how should "
            "parameters N and training tokens D be traded, and how well does the fitted law "
            "L(N, D) = E + A/N^alpha + B/D^beta predict runs it has not seen? On a task whose "
            "entropy rate is known exactly, is the fitted irreducible loss E the true one?")

TASK_NAMES = {"text": "Shakespeare (bytes)", "process": "process"}


def _name(task: str, results: dict[str, Any]) -> str:
    if task == "process":
        return f"{results['truth']['process']} (symbols)"
    return TASK_NAMES[task]


def _fit_table(results: dict[str, Any]) -> Table:
    rows = []
    for task in ("text", "process"):
        r = results.get(task, {})
        if "E" not in r:
            rows.append([_name(task, results), r.get("n_runs", 0), r.get("error", "-"), "", "",
                         "", "", ""])
            continue
        rows.append([_name(task, results), r["n_runs"], fmt_ci(r["E"]), fmt_ci(r["A"]),
                     fmt_ci(r["B"]), fmt_ci(r["alpha"]), fmt_ci(r["beta"]),
                     "yes" if r["valid"] else "no"])
    lvl = next((results[t]["E"]["level"] for t in ("text", "process") if "E" in results.get(t, {})),
               0.95)
    return Table("Approach 3: L(N, D) = E + A/N^alpha + B/D^beta",
                 ["task", "runs", "E (nats)", "A", "B", "alpha", "beta", "fit valid"], rows,
                 [f"value [{100 * lvl:g}% bootstrap percentile interval over runs]; N counts "
                  "all parameters (embeddings included), D training tokens; losses are held-out "
                  "nats per token", "fit valid: the optimizer converged, no parameter sits at a "
                  "bound, and the fit raised no warning (see the failed diagnostics above)"])


def _alloc_table(results: dict[str, Any]) -> Table:
    rows = []
    for task in ("text", "process"):
        r = results.get(task, {})
        if "E" not in r:
            continue
        tpp = r["tokens_per_param"]
        rows.append([_name(task, results), fmt_ci(r["a_approach3"]), fmt_ci(r["a_approach2"]),
                     *(f"{fmt_ci(t)} at C = {fmt(t['compute'], 2)}" for t in tpp[:2])])
    return Table("Compute-optimal allocation: N_opt ~ C^a",
                 ["task", "a (Approach 3)", "a (Approach 2: isoFLOP vertices)",
                  "tokens per parameter", "tokens per parameter (100x)"], rows,
                 ["Hoffmann et al. (2022) report a = 0.50 (Approach 3: 0.46) and about 20 "
                  "tokens per parameter at large scale; Approach 2 needs a parabola with a "
                  "vertex inside each budget's range of N"])


def _extrapolation_table(results: dict[str, Any]) -> Table:
    rows = []
    for task in ("text", "process"):
        ex = results.get(task, {}).get("extrapolation")
        if ex is None:
            continue
        rows.append([_name(task, results), fmt(ex["held_out_N"]), ex["n_points"],
                     f"{100 * ex['mean_abs_relative_error']:.2f}%",
                     f"{100 * ex['max_abs_relative_error']:.2f}%",
                     f"{100 * ex['coverage']:.0f}%",
                     "-" if ex.get("calibrated_coverage") is None
                     else f"{100 * ex['calibrated_coverage']:.0f}%"])
    return Table("Extrapolation: fitted without the largest model, predicting its runs",
                 ["task", "held-out N", "points", "mean |error|", "max |error|",
                  "inside the 95% observation interval", "inside the 95% calibrated interval"],
                 rows, ["error = (predicted - measured) / measured loss",
                        "calibrated: the observation interval widened by the error that "
                        "backtests on the smaller models measured at the same distance; '-' "
                        "where they have too few sizes to backtest"])


def _truth_figure(results: dict[str, Any]) -> Figure | None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    r = results.get("process", {})
    if "E" not in r:
        return None
    t = results["truth"]
    e = r["E"]
    fig, ax = plt.subplots(figsize=(5.5, 2.2))
    lo, hi = e["ci"]
    if lo is not None and hi is not None:
        ax.errorbar([e["value"]], [0], xerr=[[e["value"] - lo], [hi - e["value"]]], fmt="o",
                    color="C0", capsize=4, label=f"fitted E, {100 * e['level']:g}% interval")
    else:
        ax.plot([e["value"]], [0], "o", color="C0", label="fitted E (no interval)")
    ax.axvline(t["h_mu_nats"], color="C3", lw=2, label="exact entropy rate h_mu ln 2")
    ax.set_yticks([])
    ax.set_xlabel("nats per symbol")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=2)
    ax.set_title(f"{t['process']}: irreducible loss E against the truth", fontsize=10)
    return figure(fig, title="Fitted E against the exact entropy rate",
                  alt=f"Fitted irreducible loss E = {fmt(e['value'])} nats with its interval, "
                      f"and the exact entropy rate {fmt(t['h_mu_nats'])} nats per symbol",
                  caption="The Approach 3 fit's E on the process task with its bootstrap "
                          "interval; the red line is the process's exact entropy rate.")


def _figures(results: dict[str, Any], objects: dict[str, Any]) -> list[Figure]:
    from occamlab.scaling import plot_extrapolation, plot_fit, plot_isoflop

    figs = []
    for task, objs in objects.items():
        name = _name(task, results)
        figs.append(figure(plot_fit(objs["fit"]), title=f"Approach 3 fit, {name}",
                           alt=f"Held-out loss against training tokens for each model size on "
                               f"{name}, with the fitted law, and the fit's residuals",
                           caption="Left: measured loss (points) and the fitted law (lines), one "
                                   "colour per model size. Right: residuals of the fit."))
        if "isoflop" in objs:
            figs.append(figure(plot_isoflop(objs["isoflop"]), title=f"Approach 2, {name}",
                               alt=f"IsoFLOP parabolas of loss against model size for each "
                                   f"compute budget on {name}, and their vertices against C",
                               caption="Each budget's parabola in ln N; its vertex is the "
                                       "budget's optimal model size."))
        if "extrapolation" in objs:
            figs.append(figure(plot_extrapolation(objs["extrapolation"]),
                               title=f"Extrapolation, {name}",
                               alt=f"Predicted against measured loss for the held-out largest "
                                   f"model on {name}",
                               caption="Runs of the largest model, predicted by the law fitted "
                                       "without them."))
    truth = _truth_figure(results)
    if truth is not None:
        figs.append(truth)
    return figs


def _verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    for task in ("text", "process"):
        r = results.get(task, {})
        name = _name(task, results)
        if "E" not in r:
            out.append(f"{name}: no fit ({r.get('error', 'no runs')}).")
            continue
        tpp = r["tokens_per_param"][0]
        a2 = r["a_approach2"]
        text = (f"{name}: N_opt grows as C^a with a = {fmt_ci(r['a_approach3'])} from the "
                f"Approach 3 fit and a = {fmt_ci(a2)} from the isoFLOP vertices; at "
                f"C = {fmt(tpp['compute'], 2)} FLOPs the optimum is {fmt_ci(tpp)} tokens per "
                "parameter (Hoffmann et al.: a about 0.5, about 20 tokens per parameter).")
        ex = r.get("extrapolation")
        if ex is not None:
            text += (f" Fitted without the largest model (N = {fmt(ex['held_out_N'])}), the law "
                     f"predicts its {ex['n_points']} runs with mean |error| "
                     f"{100 * ex['mean_abs_relative_error']:.2f}% (max "
                     f"{100 * ex['max_abs_relative_error']:.2f}%); "
                     f"{100 * ex['coverage']:.0f}% of them fall inside the 95% observation "
                     "interval.")
        res = r["residuals"]
        structured = res["p_log_d"] < 0.05 or res["p_log_n"] < 0.05
        text += (f" The residuals are {'structured' if structured else 'not detectably structured'}"
                 f": Spearman correlation with ln D {res['spearman_log_d']:.2f} "
                 f"(p = {fmt(res['p_log_d'], 2)}), with ln N {res['spearman_log_n']:.2f} "
                 f"(p = {fmt(res['p_log_n'], 2)}); the largest is {res['max_abs']:.3f} "
                 f"({res['space']} space) at N = {fmt(res['max_at']['N'])}, "
                 f"D = {fmt(res['max_at']['D'])}.")
        if structured:
            text += (" A structured residual means the five-parameter law misses part of the "
                     "shape at this scale, so its extrapolations deserve less trust than the "
                     "bootstrap interval suggests.")
        out.append(text)
    p = results.get("process", {})
    if "E" in p:
        t = results["truth"]
        ok = p.get("E_covers_h_mu")
        verdict = ("covers" if ok else "does not cover") if ok is not None else "has no interval for"
        out.append(f"Irreducible loss on {t['process']}: the fit gives E = {fmt_ci(p['E'])} "
                   f"nats per symbol; the exact entropy rate is h_mu = {fmt(t['h_mu_bits'], 4)} "
                   f"bits = {fmt(t['h_mu_nats'], 4)} nats. The interval {verdict} the truth "
                   f"(E - h_mu = {p['E_minus_h_mu']:+.3f} nats)."
                   + ("" if ok else " E in a fitted law is the loss the law extrapolates to, "
                      "not a measurement: when the models are far from the floor, E is "
                      "extrapolated and can land off the true entropy rate."))
    return out


def _flags(results: dict[str, Any]) -> list[str]:
    flags = []
    for task in ("text", "process"):
        r = results.get(task, {})
        name = _name(task, results)
        if "E" not in r:
            if "error" in r:
                flags.append(f"{name}: {r['error']}")
            continue
        if not r["converged"]:
            flags.append(f"{name}: the Approach 3 fit did not converge")
        if r["at_bound"]:
            flags.append(f"{name}: parameters at a bound: {', '.join(r['at_bound'])}")
        flags += [f"{name}: {w}" for w in r["warnings"]]
        flags += [f"{name} (isoFLOP): {w}" for w in r.get("isoflop_warnings", [])]
        if r["a_approach2"].get("error"):
            flags.append(f"{name}: Approach 2 failed: {r['a_approach2']['error']}")
    if results.get("failed_runs"):
        flags.append(f"{results['failed_runs']} training runs failed and are left out")
    return flags


def _headline(results: dict[str, Any]) -> str:
    parts = []
    t = results.get("text", {})
    if "E" in t:
        parts.append(f"text: a = {fmt_ci(t['a_approach3'])}, "
                     f"{fmt_ci(t['tokens_per_param'][0])} tokens/parameter")
    p = results.get("process", {})
    if "E" in p:
        ok = p.get("E_covers_h_mu")
        parts.append(f"{results['truth']['process']}: E = {fmt_ci(p['E'])} nats vs h_mu = "
                     f"{fmt(results['truth']['h_mu_nats'], 4)} "
                     f"({'covered' if ok else 'not covered'})")
    return "; ".join(parts) or "no fit"


def section(config: Any, results: dict[str, Any], objects: dict[str, Any]) -> Section:
    n_text = results.get("text", {}).get("n_runs", 0)
    n_proc = results.get("process", {}).get("n_runs", 0)
    setup = [
        f"An isoFLOP grid (Hoffmann et al. 2022): budgets C = "
        f"{', '.join(fmt(c, 2) for c in config.budgets)} FLOPs (text) and "
        f"{', '.join(fmt(c, 2) for c in config.process_budgets)} (process); each of "
        f"{len(config.models)} models (d_model, layers, heads) = "
        f"{', '.join(str(tuple(m)) for m in config.models)} trains on D = C / (6 N) tokens, "
        f"with N all its parameters, embeddings included (Porian et al. 2024 trace part of "
        f"Kaplan's and Hoffmann's disagreement to leaving them out); pairs with fewer than "
        f"{config.min_steps} steps or more than {fmt(config.max_tokens)} tokens are left out.",
        f"Tasks: {config.corpus} as bytes ({n_text} runs) and the {config.process} process's "
        f"symbols ({n_proc} runs, one sampled sequence, seed 0). Context {config.context}, "
        f"batch {config.batch_size}, AdamW at lr {config.lr:g} with warm-up and cosine decay, "
        f"one epoch at most; loss = held-out nats per token at the end of the schedule. Seed "
        f"{config.seed}; {config.bootstrap} bootstrap resamples of the runs.",
    ]
    flags = _flags(results)
    status = "flagged" if flags else "ok"
    tables: list[Any] = [_fit_table(results), _alloc_table(results)]
    if any("extrapolation" in results.get(t, {}) for t in ("text", "process")):
        tables.append(_extrapolation_table(results))
    return Section(key="chinchilla", title=TITLE, headline=_headline(results), question=QUESTION,
                   setup=setup, config=config.to_dict(), tables=tables,
                   figures=_figures(results, objects), verdict=_verdicts(results), flags=flags,
                   status=status)
