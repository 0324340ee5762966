"""The page section of the ``mdl-slt`` suite experiment: tables, figures and verdicts written from
its results dictionary (the numbers on the page are the numbers in ``results.json``)."""

from __future__ import annotations

import math
from typing import Any

from occamlab._render import Table
from occamlab.reports import Figure, Section, figure

from ._numbers import fmt, fmt_ci

__all__ = ["section", "TITLE", "QUESTION"]

TITLE = "MDL meets SLT: the LLC against compression, and the volume law"
QUESTION = (
    "Urdshals et al. (arXiv:2510.12077) claim (1) a two-part code whose redundancy is "
    "R_n = lambda log n - (m - 1) log log n + O(1) for a realizable truth, and (2) that LLC "
    "estimates are linearly related to the critical compression threshold n_q across models. "
    "The seed doubts both: no optimality guarantee, and 'LLC estimation is an art not a "
    "science, and quantizing models arbitrarily naturally leads to buggy implementations'. "
    "With the protocol explicit and checked: does n_q follow the LLC on our own models, and how "
    "does that depend on the protocol? Where lambda is known, does the volume of near-optimal "
    "parameters scale as eps^lambda, and do the code and the free energy follow the formula?")


MARKERS = {"text": "o", "process": "s"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ---- tables ------------------------------------------------------------------------------------
def _models_table(config: Any, results: dict[str, Any]) -> Table:
    keys = [f"{s} @ eps {e:g}" for s in config.schemes for e in config.epsilons]
    rows = []
    for m in results["models"]:
        llc = m.get("llc") or {}
        rows.append([m["name"], m["N"], fmt(m.get("loss")),
                     f"{fmt(llc.get('llc'))} ± {fmt(llc.get('llc_stderr'), 2)}",
                     fmt(llc.get("rhat")), fmt(llc.get("temperature")),
                     fmt(llc.get("step_size"), 2), *(m["n_q"].get(k, "-") for k in keys),
                     "kept" if not m["excluded"] else "excluded"])
    return Table("Part 1: each model's LLC and critical compression threshold n_q",
                 ["model", "params N", "loss (nats)", "LLC ± se", "R-hat", "temperature",
                  "SGLD step", *(f"n_q {k}" for k in keys), "fit"], rows,
                 ["loss: the model's mean loss on the n tokens the LLC and n_q are measured on; "
                  "LLC calibrated (pilot chains choose the step), se over chains; temperature 1 "
                  "= exact sampling; n_q in bits (rtn-*) or rank (svd)",
                  *(f"excluded {e['model']}: {e['reason']}" for e in results["excluded"])])


def _fit_row(f: dict[str, Any]) -> list[Any]:
    name = f["scheme"] + ("" if f["tasks"] == "text+process" else f" ({f['tasks']})")
    return [name, f["epsilon"], f["n_models"], fmt_ci(f["slope"]), fmt_ci(f["intercept"]),
            fmt_ci(f["pearson"]), fmt_ci(f["spearman"]), f["verdict"]]


def _fits_tables(results: dict[str, Any]) -> list[Table]:
    heads = ["scheme", "epsilon", "models", "slope (n_q per LLC)", "intercept", "Pearson r",
             "Spearman rho", "linear relation"]
    main = [f for f in results["fits"] if f["tasks"] == "text+process"]
    per_task = [f for f in results["fits"] if f["tasks"] != "text+process"]
    note = ["n_q = intercept + slope x LLC, least squares; value [95% bootstrap percentile "
            "interval over models]; 'holds': the slope's and both correlations' intervals lie "
            "above 0; the standardised pool z-scores n_q within each scheme and epsilon"]
    return [Table("n_q against the LLC: per scheme, per epsilon and pooled", heads,
                  [_fit_row(f) for f in main], note),
            Table("n_q against the LLC, per task", heads, [_fit_row(f) for f in per_task])]


def _sensitivity_table(results: dict[str, Any]) -> Table:
    s = results["sensitivity"]
    rows = [[d["model"], fmt(d["nbeta"]), f"{d['nbeta_factor']:g}", fmt(d["step_size"], 2),
             f"{fmt(d['llc'])} ± {fmt(d['llc_stderr'], 2)}", fmt(d["temperature"]),
             fmt(d["rhat"]), fmt(d["ratio"]), "yes" if d["valid"] else "no"] for d in s["rows"]]
    notes = [f"setting n beta x{b['nbeta_factor']:g}, step {fmt(b['step_size'], 2)}: median "
             f"ratio to the calibrated LLC {fmt(b['median_ratio'])}"
             + (f"; Spearman with n_q ({b['n_q_key']}) {fmt(b['spearman_with_n_q'])}"
                if b["spearman_with_n_q"] is not None else "") for b in s["by_setting"]]
    return Table("Protocol sweep: the LLC at other n beta and step sizes (uncalibrated)",
                 ["model", "n beta", "x n/log n", "step", "LLC ± se", "temperature", "R-hat",
                  "/ calibrated", "diagnostics pass"], rows, notes)


def _miss_reason(v: dict[str, Any]) -> str:
    """Why a volume-law lambda misses the exact value by more than 10%, from what was measured."""
    if v["m"] == v["truth_m"]:
        return ("the error is statistical or from the finite eps range; more live points and a "
                "lower eps_min narrow it.")
    if v["m_identified"]:
        return ("the replicates agree on the wrong multiplicity, so this is not noise: over "
                "these decades V(eps) has a pre-asymptotic shape that curves like another m, and "
                "more live points will not change it (at the exact m the fit is closer); it takes "
                "eps further below the fitted range, or a model of the correction terms.")
    return ("the data choose the wrong multiplicity, and the log log term it leaves out biases "
            "lambda (at the exact m the fit is closer); the standard error of the free m scales "
            "as sqrt(lambda / live points), so telling m = 1 from 2 takes more live points (or "
            "several runs merged) or more decades of eps.")


def _llc_text(v: dict[str, Any]) -> str:
    """The LLC estimator's value on a Part 2 model, marked when it failed its diagnostics."""
    return fmt_ci(v["llc"]) + ("" if v["llc"].get("valid") else " (diagnostics failed)")


def _volume_table(results: dict[str, Any]) -> Table:
    rows = []
    for v in results["volume"]:
        if "error" in v:
            rows.append([v["case"], "-", "-", f"failed: {v['error']}", "", "", "", "", ""])
            continue
        rows.append([v["case"], v["n_params"], f"{fmt(v['truth_lambda'], 4)} (m={v['truth_m']})",
                     fmt_ci(v["lambda"]), f"{v['m']} ({100 * v['m_share']:.0f}%)",
                     f"{100 * v['relative_error']:.1f}%", fmt_ci(v["lambda_at_true_m"]),
                     fmt_ci(v["m_free"]), _llc_text(v)])
    return Table("Part 2: lambda from the volume law V(eps) against the exact value",
                 ["model", "d", "exact lambda", "volume-law lambda", "m chosen (share)",
                  "error", "lambda at the exact m", "m, free fit", "LLC estimator"], rows,
                 ["value [95% band over resampled and jittered nested-sampling runs]; m is "
                  "chosen among 1, 2, 3 by the fit's residual in each replicate; LLC estimator: "
                  "calibrated SGLD on the torch model of the same family, ± 2 se"])


# ---- figures -----------------------------------------------------------------------------------
def _relation_figure(config: Any, results: dict[str, Any]) -> Figure:
    plt = _plt()
    schemes = list(config.schemes)
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.2 * len(schemes), 4.2), squeeze=False)
    for ax, scheme in zip(axes[0], schemes, strict=True):
        for j, eps in enumerate(config.epsilons):
            key, colour = f"{scheme} @ eps {eps:g}", f"C{j}"
            for m in results["models"]:
                nq, llc = m["n_q"].get(key), m.get("llc") or {}
                if nq is None or llc.get("llc") is None:
                    continue
                kept = not m["excluded"]
                ax.errorbar([llc["llc"]], [nq], xerr=[[2 * (llc.get("llc_stderr") or 0)]] * 2,
                            yerr=[[1], [0]], fmt=MARKERS[m["task"]], ms=5, capsize=2,
                            color=colour if kept else "0.6", mfc=colour if kept else "none")
            f = next((f for f in results["fits"] if f["scheme"] == scheme and
                      f["epsilon"] == f"{eps:g}" and f["tasks"] == "text+process"), None)
            if f and f["slope"]["value"] is not None:
                xs = [m["llc"]["llc"] for m in results["models"] if not m["excluded"]]
                lo, hi = min(xs), max(xs)
                b, a = f["slope"]["value"], f["intercept"]["value"]
                ax.plot([lo, hi], [a + b * lo, a + b * hi], "-", color=colour, lw=1,
                        label=f"eps {eps:g}: r = {fmt(f['pearson']['value'], 2)}")
        ax.set_xlabel("LLC (calibrated SGLD), ± 2 se")
        ax.set_ylabel("n_q (" + ("rank" if scheme == "svd" else "bits") + "), bracket (n_q-1, n_q]")
        ax.set_title(f"{scheme}: n_q against the LLC", fontsize=10)
        if ax.get_legend_handles_labels()[0]:  # no fitted line (too few models): no legend
            ax.legend(fontsize=7, title="circles text, squares process; hollow: excluded",
                      title_fontsize=7)
    fig.tight_layout()
    return figure(fig, title="The LLC against the critical compression threshold",
                  alt="Scatter of n_q against the calibrated LLC for each model, one panel per "
                      "compression scheme, one colour per tolerance, with fitted lines",
                  caption="Each point is one checkpoint (circles: text, squares: the "
                          "process); horizontal bars ±2 standard errors of "
                          "the LLC, vertical bars the bisection bracket of n_q; hollow grey "
                          "points failed their LLC diagnostics and are not in the fits.")


def _trajectory_figure(results: dict[str, Any]) -> Figure | None:
    t = results["trajectory"]
    pts = [p for p in t.get("points", []) if p["llc"] is not None]
    if not pts:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.errorbar([p["step"] for p in pts], [p["llc"] for p in pts],
                yerr=[2 * (p["llc_stderr"] or 0) for p in pts], fmt="o-", capsize=3)
    for p in pts:
        if not p["valid"]:
            a1.plot([p["step"]], [p["llc"]], "x", color="C3", ms=9)
    a1.set_xlabel("training step")
    a1.set_ylabel("LLC ± 2 se")
    a1.set_title(f"LLC along training ({t['model']}); x: diagnostics failed", fontsize=10)
    a2.plot([c["step"] for c in t["loss"]], [c["loss"] for c in t["loss"]], lw=0.6,
            color="0.6", label="training batch loss")
    a2.plot([c["step"] for c in t["val_loss"]], [c["val_loss"] for c in t["val_loss"]], "o-",
            color="C1", label="held-out loss")
    a2.set_xlabel("training step")
    a2.set_ylabel("loss (nats per token)")
    a2.set_title("its loss curve", fontsize=10)
    a2.legend(fontsize=8)
    fig.tight_layout()
    return figure(fig, title="The LLC trajectory beside the loss curve",
                  alt=f"LLC at each checkpoint of one training run of {t['model']} against the "
                      "step, and the training and held-out loss against the step",
                  caption="Calibrated LLC at each kept checkpoint (same data and protocol as "
                          "Part 1); right: the run's loss curve.")


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def _volume_figure(objs: dict[str, Any]) -> Figure | None:
    import numpy as np

    if not objs:
        return None
    plt = _plt()
    r, c = _grid(len(objs))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.3 * r), squeeze=False)
    for ax, v in zip(axes.flat, objs.values(), strict=False):
        e = np.asarray(v.eps)
        lv, lo, hi = (np.asarray(a, dtype=float) for a in (v.log_volume, v.log_volume_lo,
                                                           v.log_volume_hi))
        ax.fill_between(np.log10(e), lo / np.log(10), hi / np.log(10), color="C0", alpha=0.3)
        ax.plot(np.log10(e), lv / np.log(10), color="C0", lw=1.2, label="nested sampling")
        if v.truth_lambda is not None:
            mid = int(np.argmin(np.abs(np.log(e) - np.log(np.sqrt(np.prod(v.fit_range))))))
            ll = np.log(-np.log(e))
            ref = (lv[mid] + v.truth_lambda * (np.log(e) - np.log(e[mid]))
                   + (v.truth_m - 1) * (ll - ll[mid]))
            ax.plot(np.log10(e), ref / np.log(10), "--", color="C3", lw=1,
                    label=f"exact: lambda {fmt(v.truth_lambda)}, m {v.truth_m}")
        ax.axvspan(*np.log10(v.fit_range), color="0.9", zorder=0)
        ax.set_xlabel("log10 eps")
        ax.set_ylabel("log10 V(eps)")
        ax.set_title(f"{v.name}: lambda {fmt(v.lambda_)}", fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(objs):]:
        ax.axis("off")
    fig.tight_layout()
    return figure(fig, title="The volume law V(eps) = Pr(K(w) < eps)",
                  alt="Log prior volume of near-optimal parameters against log eps for each "
                      "known-lambda model, with its band and the exact scaling",
                  caption="Blue: nested sampling (dynesty), 95% band over resampled and "
                          "jittered runs; red dashes: c eps^lambda (-log eps)^(m-1) with the "
                          "exact lambda and m through the middle of the fit range (grey).")


def _code_figure(objs: dict[str, Any]) -> Figure | None:
    import numpy as np

    objs = {k: v for k, v in objs.items() if v.truth_lambda is not None}
    if not objs:
        return None
    plt = _plt()
    r, c = _grid(len(objs))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.3 * r), squeeze=False)
    for ax, v in zip(axes.flat, objs.values(), strict=False):
        n = np.asarray(v.n_values)
        f = v.truth_lambda * np.log(n) - (v.truth_m - 1) * np.log(np.log(n))
        for what, colour, label in (("redundancy", "C0", "two-part code R_n"),
                                    ("free_energy", "C2", "free energy F_n")):
            y = np.asarray(getattr(v, what), dtype=float)
            lo = np.asarray(getattr(v, what + "_lo"), dtype=float)
            hi = np.asarray(getattr(v, what + "_hi"), dtype=float)
            ax.fill_between(f, lo, hi, color=colour, alpha=0.25)
            ax.plot(f, y, color=colour, lw=1.2, label=label)
        ax.plot(f, f + (np.asarray(v.redundancy)[-1] - f[-1]), ":", color="0.3", lw=1,
                label="slope 1")
        ax.set_xlabel("lambda log n - (m-1) log log n  (nats)")
        ax.set_ylabel("nats")
        ax.set_title(f"{v.name}, n = 1e2 .. 1e8", fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(objs):]:
        ax.axis("off")
    fig.tight_layout()
    return figure(fig, title="The two-part code and the free energy against the formula",
                  alt="Redundancy of the best two-part code and Bayesian free energy, both "
                      "computed from the measured volume, against lambda log n - (m-1) log log n "
                      "for n from 100 to 1e8, for each known-lambda model",
                  caption="R_n = min_eps [-log V(eps) + n eps] and F_n = -log E_prior "
                          "exp(-n K) from the same nested-sampling runs (bands: 95% over "
                          "replicates), against the asymptotic formula with the exact lambda and "
                          "m; a line of slope 1 means the formula's n-dependence is right.")


def _figures(config: Any, results: dict[str, Any], objects: dict[str, Any]) -> list[Figure]:
    figs = [_relation_figure(config, results)]
    for f in (_trajectory_figure(results), _volume_figure(objects.get("volume", {})),
              _code_figure(objects.get("volume", {}))):
        if f is not None:
            figs.append(f)
    return figs


# ---- text --------------------------------------------------------------------------------------
def _main_fits(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in results["fits"] if f["tasks"] == "text+process"]


def _relation_verdict(config: Any, results: dict[str, Any]) -> list[str]:
    fits = _main_fits(results)
    per = [f for f in fits if f["epsilon"] != "pooled" and not f["standardised"]]
    held = [f for f in per if f["verdict"] == "holds"]
    parts = [f"{f['scheme']} at eps {f['epsilon']}: slope {fmt_ci(f['slope'])}, Pearson "
             f"{fmt_ci(f['pearson'])}, Spearman {fmt_ci(f['spearman'])} ({f['verdict']})"
             for f in per]
    pooled = next((f for f in fits if f["standardised"]), None)
    text = (f"Part 1, {results['n_kept']} of {results['n_models']} models in the fits: "
            + "; ".join(parts) + ".")
    if pooled is not None:
        text += (f" Pooled over schemes and tolerances (n_q standardised): Pearson "
                 f"{fmt_ci(pooled['pearson'])}, Spearman {fmt_ci(pooled['spearman'])} "
                 f"({pooled['verdict']}).")
    if per and len(held) == len(per):
        text += (" A positive linear relation between the LLC and n_q holds on our models for "
                 "every scheme and tolerance.")
    elif held:
        text += (f" The relation holds for {len(held)} of {len(per)} scheme/tolerance "
                 "settings only: it depends on the protocol.")
    else:
        text += " No linear relation is detected on our models at these settings."
    lin = [f for f in per if f["pearson"]["value"] is not None
           and f["spearman"]["value"] is not None]
    if lin:
        gap = max(abs(f["pearson"]["value"] - f["spearman"]["value"]) for f in lin)
        text += (f" Pearson and Spearman differ by at most {fmt(gap, 2)}: "
                 + ("the relation is about as linear as it is monotone." if gap < 0.1 else
                    "part of it is monotone but not linear (n_q is an integer and saturates)."))
    return [text]


def _task_verdict(results: dict[str, Any]) -> str:
    per_task = [f for f in results["fits"] if f["tasks"] != "text+process"]
    bits = [f"{f['tasks']} {f['scheme']} eps {f['epsilon']}: Spearman {fmt_ci(f['spearman'])}"
            for f in per_task]
    held = {t: sum(1 for f in per_task if f["tasks"] == t and f["verdict"] == "holds")
            for t in ("text", "process")}
    n_set = {t: sum(1 for f in per_task if f["tasks"] == t) for t in ("text", "process")}
    summary = "; ".join(f"within {t} it holds in {held[t]} of {n_set[t]} settings"
                        for t in ("text", "process") if n_set[t])
    caveat = ""
    if n_set["text"] and n_set["process"] and min(held.values()) < max(n_set.values()):
        caveat = (" Where it holds pooled but not within a task, part of the pooled relation "
                  "is the difference between the tasks (smaller LLC and n_q on the process), "
                  "not a relation among models of one task.")
    return ("Within one task (sizes and training lengths vary, the data do not): "
            + "; ".join(bits) + f". In short, {summary}." + caveat + " Pooling tasks mixes "
            "vocabularies (256 bytes against the process's alphabet), whose embeddings differ "
            "in size and in what compression removes.")


def _sensitivity_verdict(results: dict[str, Any]) -> str:
    s = results["sensitivity"]
    if not s["rows"]:
        return "No protocol sweep was run."
    bits = [f"n beta x{b['nbeta_factor']:g}, step {fmt(b['step_size'], 2)}: median "
            f"{fmt(b['median_ratio'])} x the calibrated LLC ({b['n_valid']} of "
            f"{b['n_models']} pass their diagnostics)"
            + (f", Spearman with n_q {fmt(b['spearman_with_n_q'])}"
               if b["spearman_with_n_q"] is not None else "") for b in s["by_setting"]]
    return (f"Protocol choices ({s['n_models']} model(s), uncalibrated SGLD): "
            + "; ".join(bits) + ". The LLC's value scales with n beta and with the step where "
            "the chains run hot, so a slope of n_q against the LLC is specific to the "
            "protocol; a rank correlation survives a change of protocol only if every model "
            "moves alike.")


def _trajectory_verdict(results: dict[str, Any]) -> str | None:
    t = results["trajectory"]
    pts = [p for p in t.get("points", []) if p["llc"] is not None]
    if len(pts) < 2:
        return None
    return (f"Along training ({t['model']}), the LLC goes from {fmt(pts[0]['llc'])} at step "
            f"{pts[0]['step']} to {fmt(pts[-1]['llc'])} at step {pts[-1]['step']} "
            f"({sum(1 for p in pts if not p['valid'])} of {len(pts)} checkpoints fail their "
            "diagnostics), while the held-out loss falls.")


def _volume_verdict(results: dict[str, Any]) -> list[str]:
    rows = [v for v in results["volume"] if "error" not in v]
    if not rows:
        return ["Part 2: no volume-law run finished."]
    out = []
    for v in rows:
        wrong = (f", but the exact m is {v['truth_m']}"
                 if v["truth_m"] is not None and v["m"] != v["truth_m"] else "")
        m_txt = (f"m = {v['m']} identified ({100 * v['m_share']:.0f}% of replicates){wrong}"
                 if v["m_identified"] else
                 f"m not identified (m = {v['m']} in {100 * v['m_share']:.0f}% of replicates; "
                 f"free fit {fmt_ci(v['m_free'])})")
        text = (f"{v['case']}: volume-law lambda {fmt_ci(v['lambda'])} against exact "
                f"{fmt(v['truth_lambda'], 4)} (m = {v['truth_m']}), error "
                f"{100 * v['relative_error']:.1f}%; {m_txt}; at the exact m the fit gives "
                f"{fmt_ci(v['lambda_at_true_m'])}; over {v['decades']:.0f} decades of eps. "
                f"Code slope against the formula {fmt(v['code'].get('slope'))}, free energy "
                f"{fmt(v['free_energy'].get('slope'))}; LLC estimator {_llc_text(v)}.")
        if not v["within_10pct"]:
            text += " Not within 10%: " + _miss_reason(v)
        out.append(text)
    ok = sum(1 for v in rows if v["within_10pct"])
    out.insert(0, f"Part 2: the volume-law lambda is within 10% of the exact value on {ok} of "
                  f"{len(rows)} models.")
    return out


def _flags(results: dict[str, Any]) -> list[str]:
    flags = [f"excluded from the fits: {e['model']} ({e['reason']})" for e in results["excluded"]]
    flags += [f"volume law {v['case']}: {w}" for v in results["volume"]
              for w in v.get("warnings", [])]
    flags += [f"volume law {v['case']} failed: {v['error']}" for v in results["volume"]
              if "error" in v]
    flags += [f"LLC estimator on {v['case']}: {w}" for v in results["volume"]
              if "error" not in v and not v["llc"].get("valid")
              for w in (v["llc"].get("warnings") or ["failed its diagnostics"])]
    if results.get("failed_runs"):
        flags.append(f"{results['failed_runs']} runs failed")
    return flags


def _headline(results: dict[str, Any]) -> str:
    fits = [f for f in _main_fits(results) if f["epsilon"] != "pooled" and not f["standardised"]]
    parts = []
    if fits:
        f = fits[0]
        parts.append(f"n_q vs LLC ({f['scheme']}, eps {f['epsilon']}): Pearson "
                     f"{fmt_ci(f['pearson'], 2)} on {f['n_models']} models "
                     f"({results['n_models'] - results['n_kept']} excluded)")
    rows = [v for v in results["volume"] if "error" not in v]
    if rows:
        ok = sum(1 for v in rows if v["within_10pct"])
        parts.append(f"volume-law lambda within 10% on {ok}/{len(rows)} known models")
    return "; ".join(parts) or "no results"


def _setup(config: Any, results: dict[str, Any]) -> list[str]:
    traj = results["trajectory"]
    return [
        f"Part 1: {len(config.models)} transformer sizes (d_model, layers, heads) = "
        f"{', '.join(str(tuple(m)) for m in config.models)}, each trained once on "
        f"{config.corpus} bytes and once on the {config.process} process's symbols (three "
        f"causal states), {config.steps} steps of {config.batch_size} x {config.context} "
        f"tokens, AdamW at lr {config.lr:g}; the checkpoints at steps "
        f"{', '.join(map(str, config.snapshots))} of each run are the models "
        f"({results['n_models']}). Seed {config.seed}.",
        f"At each model: the LLC on the first {config.max_tokens} predicted tokens of its "
        f"training data (n beta = n / log n; SGLD step and localization calibrated by pilot "
        f"chains of {config.calibration.pilot_burnin} + {config.calibration.pilot_draws} "
        f"steps, then {config.sgld.n_chains} chains of {config.sgld.n_burnin} + "
        f"{config.sgld.n_draws} draws, minibatch {config.sgld.batch_size} windows), and n_q by "
        f"bisection for {', '.join(config.schemes)} at epsilon "
        f"{', '.join(f'{e:g}' for e in config.epsilons)} nats per token on the same tokens. "
        f"n_q's uncertainty is its {results['n_q_uncertainty']}. A model whose LLC fails "
        "its own diagnostics (divergence, R-hat > 1.1, drift, ESS, temperature, sign) is "
        f"kept on the page and left out of the fits. {config.bootstrap} bootstrap resamples "
        "of the models.",
        f"Protocol sweep on {config.sensitivity_models} final checkpoint(s): n beta x "
        f"{', '.join(f'{f:g}' for f in config.sensitivity_nbeta)} of n / log n at steps "
        f"{', '.join(f'{s:g}' for s in config.sensitivity_steps)} (uncalibrated). Trajectory: "
        f"{traj.get('model', '-')} at steps {', '.join(map(str, config.trajectory))}.",
        f"Part 2: {len(config.volume_cases)} models with exact lambda and m "
        f"({', '.join(config.volume_cases)}); K(w) is the exact population loss (whitened "
        f"inputs: ||f_w - f_w0||^2 / 2), the prior uniform on a box around the true set; "
        f"dynesty nested sampling (rslice, {config.n_live} live points x {config.n_runs} "
        f"run(s), stopped at K < 1e-11) gives V(eps) = X at each contour, the code redundancy "
        f"and the free energy; {config.n_replicates} resampled and jittered replicates give "
        "the bands. The LLC estimator runs on the torch model of the same family.",
    ]


def section(config: Any, results: dict[str, Any], objects: dict[str, Any]) -> Section:
    verdict = _relation_verdict(config, results)
    verdict.append(_task_verdict(results))
    verdict.append(_sensitivity_verdict(results))
    tv = _trajectory_verdict(results)
    if tv:
        verdict.append(tv)
    verdict += _volume_verdict(results)
    flags = _flags(results)
    tables: list[Any] = [*_fits_tables(results), _models_table(config, results)]
    if results["sensitivity"]["rows"]:
        tables.append(_sensitivity_table(results))
    tables.append(_volume_table(results))
    return Section(key="mdl-slt", title=TITLE, headline=_headline(results), question=QUESTION,
                   setup=_setup(config, results), config=config.to_dict(), tables=tables,
                   figures=_figures(config, results, objects), verdict=verdict, flags=flags,
                   status="flagged" if flags else "ok")
