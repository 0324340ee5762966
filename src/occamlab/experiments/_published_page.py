"""The page section of the ``published`` suite experiment, written from its results dictionary."""

from __future__ import annotations

from typing import Any

from occamlab._render import Table
from occamlab.reports import Figure, Section, figure

from ._numbers import fmt, fmt_ci

__all__ = ["section", "TITLE", "QUESTION"]

TITLE = "Published measurements, refitted, and prediction against generation"
QUESTION = ("Before training anything: do the published scaling-law claims the seed cites "
            "(Chinchilla's allocation, Kaplan's against Hoffmann's exponent, loss-to-loss "
            "transfer, which downstream tasks are predictable) hold up when refitted with "
            "intervals? And for the seed's second post: over the binary Markov process, where "
            "is a generator smaller than the predictive model (C_mu)?")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _tables(results: dict[str, Any]) -> list[Any]:
    ch = results["chinchilla"]
    iso = results["isoflop"]
    l2l = results["loss_to_loss"]
    pub = results["published"]
    rows = [[k, fmt_ci(ch[k], 4)] for k in ("E", "A", "B", "alpha", "beta")]
    t1 = Table("Chinchilla Approach 3 on Porian et al. (tuned settings)", ["parameter",
               "value [95% bootstrap interval]"], rows,
               [f"{ch['n_runs']} runs; fit valid: {'yes' if ch['valid'] else 'no'}"])
    rows2 = [["Approach 3 (tuned)", fmt_ci(ch["a_approach3"]), "-"],
             ["Approach 2 (tuned)", fmt_ci(iso["isoflop_tuned"]), fmt(pub["isoflop_tuned_a"])],
             ["Approach 2 (Kaplan-like)", fmt_ci(iso["isoflop_kaplan"]),
              fmt(pub["isoflop_kaplan_a"])]]
    t2 = Table("Compute-optimal exponent a (N_opt ~ C^a)", ["method (settings)",
               "a [95% interval]", "published (Porian et al.)"], rows2,
               ["Kaplan-like: base hyperparameters, long warm-up, Kaplan's schedule and "
                "parameter count, training loss; tuned: tuned hyperparameters, short warm-up, "
                "constant schedule, standard count, validation loss"])
    tpp = ch["tokens_per_param"]
    t3 = Table("Tokens per parameter at the optimum (Approach 3, tuned)",
               ["compute C (FLOPs)", "D_opt / N_opt [95% interval]"],
               [[fmt(t["compute"], 3), fmt_ci(t)] for t in tpp],
               [f"Hoffmann et al.: about {fmt(pub['chinchilla_tokens_per_param'])} tokens per "
                "parameter; C = 5.76e23 is Chinchilla's own budget"])
    lo, hi = pub["kappa_range"]
    t4 = Table("Loss-to-loss: PTB loss = K (C4 loss - E_x)^kappa + E_y (Gadre et al. C4 models)",
               ["parameter", "value [95% interval]"],
               [[k, fmt_ci(l2l[k], 4)] for k in ("kappa", "K", "E_x", "E_y")],
               [f"{l2l['n_models']} models paired by (N, D); Brandfonbrener et al. report kappa "
                f"between {lo} and {hi} for train-to-test pairs"])
    d = results["downstream"]
    t5 = Table("Downstream verdicts (Gadre et al. tasks against compute)",
               ["verdict", "tasks"], [[k, v] for k, v in d["counts"].items()],
               [f"{d['n_tasks']} tasks; Lourie et al. (2025) found {d['published_predictable']} "
                "predictable"])
    m = results["mechanics"]
    t6 = Table(f"Binary Markov process at p = q = {fmt(m['at_p'])}, bits",
               ["presentation", "state entropy"],
               [["epsilon-machine (C_mu)", fmt(m["c_mu"], 4)],
                ["Lohr's 3-state generator", fmt(m["lohr"], 4)],
                [f"best {m['states']}-state generator found", fmt(m["minimal_generator"], 4)]],
               [f"Lohr's generator beats C_mu above p = {m['lohr_crossover']:.4f} (exact)"])
    return [t1, t2, t3, *_extrapolation_table(ch), t4, t5, t6]


def _extrapolation_table(ch: dict[str, Any]) -> list[Table]:
    ex = ch.get("extrapolation")
    if ex is None:
        return []
    cal = ex.get("calibrated_coverage")
    old_w, new_w = ex.get("median_half_width", [None, None])
    rows = [["observation (law + noise)", f"{100 * ex['coverage']:.0f}%", fmt(old_w, 3)],
            ["calibrated by backtests", "-" if cal is None else f"{100 * cal:.0f}%",
             "-" if cal is None else fmt(new_w, 3)]]
    return [Table("Extrapolation to the two largest sizes (Approach 3, tuned)",
                  ["95% interval", "held-out runs inside", "median half-width / loss"], rows,
                  [f"{ex['n_points']} held-out runs, mean |error| "
                   f"{100 * ex['mean_abs_relative_error']:.2f}%; calibrated: refits below "
                   "successive size cut-offs of the training runs measure how the error grows "
                   "with the distance extrapolated"])]


def _l2l_figure(l2l: Any) -> Figure:
    import numpy as np

    plt = _plt()
    x = np.asarray(l2l.law.inputs["x"])
    y = np.asarray(l2l.law.observed)
    pred = l2l.predict(x)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.errorbar(y, pred.value, yerr=[np.subtract(pred.value, pred.lower),
                                     np.subtract(pred.upper, pred.value)],
                fmt="o", ms=3, color="C0", alpha=0.7, label="models")
    lim = [min(y.min(), min(pred.value)), max(y.max(), max(pred.value))]
    ax.plot(lim, lim, color="k", lw=0.8, label="predicted = measured")
    ax.set_xlabel(f"measured {l2l.y_name} (nats)")
    ax.set_ylabel(f"predicted from {l2l.x_name} (nats)")
    ax.set_title("Loss-to-loss: predicted against measured", fontsize=10)
    ax.legend(fontsize=8)
    return figure(fig, title="Loss-to-loss, predicted against measured",
                  alt="Penn Treebank loss predicted from C4 validation loss against the measured "
                      "one, one point per model, near the diagonal",
                  caption="Each C4-trained model's PTB loss predicted by the fitted loss-to-loss "
                          "law from its C4 loss (bars: the law's 95% interval).")


def _downstream_figure(down: Any) -> Figure:
    import numpy as np

    from occamlab.scaling import load_dataset

    plt = _plt()
    gadre = load_dataset("gadre2024")
    corpus = down.x_name
    sub = gadre[gadre["dataset"] == "rw_original"]
    picks: list[Any] = []
    for verdict in ("predictable", "noisy", "non-monotone", "inverse", "breakthrough"):
        picks += [m for m in down.verdicts if m.verdict == verdict][:1]
    fig, axes = plt.subplots(1, len(picks), figsize=(3.0 * len(picks), 2.8), squeeze=False)
    for ax, m in zip(axes[0], picks, strict=True):
        x = np.asarray(sub[corpus], float)
        y = np.asarray(sub[m.metric], float)
        ax.scatter(x, y, s=8, color="C0")
        ax.set_xscale("log")
        ax.set_title(f"{m.metric.removeprefix('task_')}\n{m.verdict}", fontsize=8)
        ax.set_xlabel(f"{corpus} (FLOPs)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("accuracy", fontsize=8)
    fig.tight_layout()
    return figure(fig, title="Downstream metrics against compute, one task per verdict",
                  alt="Accuracy against training compute for one task of each verdict: a "
                      "predictable trend, noise, a reversal, a decline and a sharp rise",
                  caption="One example task of each verdict (Gadre et al.'s RefinedWeb models); "
                          "the verdict of every task is in the table above.")


def _mechanics_figures(gmap: Any, line: Any, results: dict[str, Any]) -> list[Figure]:
    import numpy as np

    plt = _plt()
    c = np.array(gmap.statistical_complexity, float)
    g = np.array(gmap.generator_entropy, float)
    xs, ys = gmap.x_values, gmap.y_values
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = ((c, "C_mu (predictive)", "viridis"),
              (g, f"best {gmap.states}-state generator", "viridis"),
              (c - g, "C_mu minus generator entropy", "magma"))
    for ax, (z, name, cmap) in zip(axes, panels, strict=True):
        im = ax.imshow(z.T, origin="lower", cmap=cmap, aspect="auto",
                       extent=(xs[0], xs[-1], ys[0], ys[-1]))
        ax.set_title(f"{name} (bits)", fontsize=9)
        ax.set_xlabel("p")
        ax.set_ylabel("q")
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.tight_layout()
    heat = figure(fig, title="Prediction against generation over the (p, q) square",
                  alt="Heat maps over p and q of the statistical complexity, the entropy of the "
                      "best two-state generator, and their difference, positive off the IID "
                      "line p + q = 1",
                  caption="Binary Markov process: the predictive model's memory C_mu, the least "
                          "state entropy of a generator found by search, and the gain.")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    v = np.array(line.values)
    ax.plot(v, np.array(line.statistical_complexity, float), label="C_mu")
    ax.plot(v, np.array(line.lohr_entropy, float), label="Lohr's generator")
    ax.plot(v, np.array(line.generator_entropy, float), label=f"best {line.states}-state generator")
    x0 = results["mechanics"]["lohr_crossover"]
    ax.axvline(x0, color="grey", ls="--", lw=1, label=f"crossover p = {x0:.4f}")
    ax.set_xlabel("p = q")
    ax.set_ylabel("state entropy (bits)")
    ax.set_title("Along p = q: C_mu, Lohr's generator and the best generator", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    diag = figure(fig, title="Along p = q",
                  alt="Entropy of the epsilon-machine, Lohr's generator and the best 2-state "
                      "generator against p = q; Lohr's crosses C_mu at p = 0.3865",
                  caption="Lohr's generator beats C_mu = 1 above the crossover; the searched "
                          "generator is smaller than both.")
    return [heat, diag]


def _figures(results: dict[str, Any], objs: dict[str, Any]) -> list[Figure]:
    from occamlab.scaling import plot_extrapolation, plot_fit, plot_isoflop

    ch = objs["chinchilla"]
    figs = [figure(plot_fit(ch.fit), title="Chinchilla Approach 3 on Porian et al.",
                   alt="Validation loss against training tokens for each model size of Porian "
                       "et al.'s tuned sweep, with the fitted law, and the fit's residuals",
                   caption="Left: runs (points) and the fitted law (lines) by model size. "
                           "Right: residuals in log space against tokens.")]
    if ch.extrapolation is not None:
        figs.append(figure(plot_extrapolation(ch.extrapolation),
                           title="Extrapolation to the two largest models",
                           alt="Predicted against measured loss of the two largest model sizes, "
                               "fitted without them",
                           caption="Refit without the two largest model sizes; their runs "
                                   "predicted."))
    for key, name in (("isoflop_tuned", "tuned"), ("isoflop_kaplan", "Kaplan-like")):
        figs.append(figure(plot_isoflop(objs[key], title=f"Approach 2, {name} settings"),
                           title=f"Approach 2, {name} settings",
                           alt=f"Optimal model size against compute from isoFLOP parabolas, "
                               f"{name} settings, with the fitted power law",
                           caption="Each point is a budget's parabola vertex (bars: bootstrap "
                                   "interval); the line is N_opt = G C^a."))
    figs.append(_l2l_figure(objs["loss_to_loss"]))
    figs.append(_downstream_figure(objs["downstream"]))
    figs += _mechanics_figures(objs["map"], objs["line"], results)
    return figs


def _verdicts(results: dict[str, Any]) -> list[str]:
    ch, iso, pub = results["chinchilla"], results["isoflop"], results["published"]
    out = []
    tk, tt = iso["isoflop_kaplan"], iso["isoflop_tuned"]
    out.append(f"The exponent gap reproduces: Kaplan-like settings give a = {fmt_ci(tk)} "
               f"(Porian et al.: {pub['isoflop_kaplan_a']}), tuned settings a = {fmt_ci(tt)} "
               f"({pub['isoflop_tuned_a']}), and Approach 3 on the tuned runs "
               f"a = {fmt_ci(ch['a_approach3'])}.")
    big = ch["tokens_per_param"][-1]
    out.append(f"At Chinchilla's budget (C = {fmt(big['compute'], 3)} FLOPs) the refitted law "
               f"puts the optimum at {fmt_ci(big)} tokens per parameter (Hoffmann et al.: about "
               f"{fmt(pub['chinchilla_tokens_per_param'])}).")
    ex = ch.get("extrapolation")
    if ex is not None:
        out.append(f"Fitted without the two largest model sizes, the law predicts their "
                   f"{ex['n_points']} runs with mean |error| "
                   f"{100 * ex['mean_abs_relative_error']:.2f}% (max "
                   f"{100 * ex['max_abs_relative_error']:.2f}%); "
                   f"{100 * ex['coverage']:.0f}% fall inside the 95% observation interval.")
        if ex.get("calibrated_coverage") is not None:
            old_w, new_w = ex["median_half_width"]
            out.append(f"Intervals calibrated by backtests on the smaller sizes alone cover "
                       f"{100 * ex['calibrated_coverage']:.0f}% of them (median half-width "
                       f"{100 * new_w:.1f}% of the loss, against {100 * old_w:.1f}% for the "
                       "observation interval).")
    l2l = results["loss_to_loss"]
    lo, hi = pub["kappa_range"]
    out.append(f"Loss-to-loss from C4 to Penn Treebank: kappa = {fmt_ci(l2l['kappa'])}, "
               f"{'inside' if l2l['in_published_range'] else 'outside'} Brandfonbrener et al.'s "
               f"train-to-test range [{lo}, {hi}].")
    d = results["downstream"]
    out.append(f"Downstream: {d['counts'].get('predictable', 0)} of {d['n_tasks']} tasks scale "
               f"predictably with compute here (Lourie et al.: {d['published_predictable']}); "
               + ", ".join(f"{v} {k}" for k, v in d["counts"].items() if k != "predictable")
               + ".")
    m = results["mechanics"]
    out.append(f"Prediction is not generation: at p = q = {fmt(m['at_p'])} the predictive model "
               f"needs C_mu = {fmt(m['c_mu'], 4)} bits, Lohr's generator {fmt(m['lohr'], 4)} and "
               f"the best {m['states']}-state generator found {fmt(m['minimal_generator'], 4)}; "
               f"off the IID line a generator below C_mu was found at "
               f"{m['generator_beats_cmu']} of {m['grid_points_off_iid']} grid points (a "
               "numerical search, not a proof of minimality).")
    return out


def _flags(results: dict[str, Any]) -> list[str]:
    flags = []
    ch = results["chinchilla"]
    if not ch["valid"]:
        flags.append("the Chinchilla refit failed a diagnostic: " + "; ".join(ch["warnings"]))
    for k, v in results["isoflop"].items():
        flags += [f"{k}: {w}" for w in v["warnings"]]
    if not results["loss_to_loss"]["valid"]:
        flags.append("loss-to-loss: " + "; ".join(results["loss_to_loss"]["warnings"]))
    return flags


def section(config: Any, results: dict[str, Any], objs: dict[str, Any]) -> Section:
    setup = [
        f"Porian et al. (2024) isoFLOP sweeps on RefinedWeb (tuned and Kaplan-like settings) "
        f"and Gadre et al. (2024) models, both bundled with their licences (MIT). Chinchilla "
        f"Approach 3 with Hoffmann et al.'s 4,500 starts, Huber loss (delta 1e-3) on log "
        f"residuals, {config.bootstrap} bootstrap resamples (seed {config.seed}); Approach 2 with "
        "a parabola per budget; loss-to-loss from two Chinchilla fits; downstream verdicts "
        f"after Lourie et al. (2025) on {config.downstream_corpus}.",
        f"Binary Markov process: a {config.grid} x {config.grid} grid of (p, q) and "
        f"{config.line} points of p = q, best {2}-state generator from {config.n_starts} random "
        "starts per point plus warm starts from the neighbours; exact C_mu, E and Lohr's "
        "entropy h(2p) + 1 - 2p.",
    ]
    tk = results["isoflop"]["isoflop_kaplan"]
    tt = results["isoflop"]["isoflop_tuned"]
    headline = (f"a = {fmt_ci(tk)} Kaplan-like vs {fmt_ci(tt)} tuned; kappa = "
                f"{fmt_ci(results['loss_to_loss']['kappa'])}; "
                f"{results['downstream']['counts'].get('predictable', 0)}/"
                f"{results['downstream']['n_tasks']} tasks predictable; generator < C_mu at "
                f"{results['mechanics']['generator_beats_cmu']}/"
                f"{results['mechanics']['grid_points_off_iid']} points")
    flags = _flags(results)
    return Section(key="published", title=TITLE, headline=headline, question=QUESTION,
                   setup=setup, config=config.to_dict(), tables=_tables(results),
                   figures=_figures(results, objs), verdict=_verdicts(results), flags=flags,
                   status="flagged" if flags else "ok")
