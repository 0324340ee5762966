"""The page section of the ``prediction-generation`` suite experiment: tables, figures and
verdicts written from its results dictionary (the numbers on the page are those of
``results.json``; the Mess3 simplex and the cluster scatter draw the stored points of the
probe runs)."""

from __future__ import annotations

import math
from typing import Any

from occamlab._render import Table
from occamlab.reports import Figure, Section, figure

from ._numbers import fmt, fmt_ci

__all__ = ["section", "TITLE", "QUESTION"]

TITLE = "Prediction is not generation, with transformers"
QUESTION = ("The seed's second post: a process's predictive model (its epsilon-machine, memory "
            "C_mu) need not be its smallest generator. What do small transformers trained to "
            "predict four processes of known structure actually learn? How close do they get "
            "to the entropy rate, and when do they synchronize? Do their residual streams hold "
            "the belief states (linearly, as Shai et al. 2024 found for Mess3)? And when they "
            "generate, is the epsilon-machine of their samples the process's own?")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in p.items())


def _name(name: str, proc: dict[str, Any]) -> str:
    return f"{name} ({_params(proc['params'])})" if proc["params"] else name


def _run_label(r: dict[str, Any]) -> str:
    d, L, h = r["model"]
    return f"d{d} L{L} h{h}, {fmt(r['n_params'], 3)} params, {fmt(r['tokens'], 2)} tokens"


def _signed(e: dict[str, Any], digits: int = 3) -> str:
    v = e.get("value")
    return fmt_ci(e, digits) if v is None or v < 0 else "+" + fmt_ci(e, digits)


def _procs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(results.get("processes", {}).items())


# ---- tables ----------------------------------------------------------------------------------
def _prediction_table(results: dict[str, Any]) -> Table:
    rows = []
    for name, proc in _procs(results):
        t = proc["truth"]
        for r in proc["runs"]:
            rows.append([name, _run_label(r), fmt_ci(r["loss"], 4), fmt(t["h_mu_nats"], 4),
                         _signed(r["gap_h_mu"], 3), fmt_ci(r["optimal"], 4),
                         _signed(r["excess"], 3), fmt(t["marginal_nats"], 4)])
    return Table("Prediction: held-out loss per symbol against the entropy rate (nats)",
                 ["process", "model", "loss", "h_mu", "loss - h_mu", "Bayes-optimal, same "
                  "context", "loss - Bayes-optimal", "H(X) (no memory)"], rows,
                 ["value [95% interval, +-1.96 standard errors over independent held-out "
                  "sequences]; the loss averages every position of a window, so part of "
                  "loss - h_mu is the cost of synchronizing, which the Bayes-optimal predictor "
                  "(exact belief states, the same context) pays too; the excess over it is "
                  "paired on the same symbols"])


def _probe_table(results: dict[str, Any]) -> Table:
    width = max((len(r["probe"]["layers"]) for _, p in _procs(results) for r in p["runs"]),
                default=2)
    layers = ["embedding", *[f"block {i}" for i in range(1, width - 1)], "all layers"]
    rows = []
    for name, proc in _procs(results):
        for r in proc["runs"]:
            pr = r["probe"]
            by = dict(zip(pr["layers"], pr["r2"], strict=True))
            acc = (f"{fmt(pr['accuracy'][-1])} (chance {fmt(pr['chance'])})"
                   if pr["accuracy"] else "-")
            rows.append([name, _run_label(r), *[fmt(by.get(k)) for k in layers],
                         pr["n_belief_values"], acc])
    return Table("Belief states: held-out R^2 of linear probes from the residual stream",
                 ["process", "model", *layers, "belief values", "accuracy (all layers)"], rows,
                 ["R^2 = 1 - SSE/SST over positions and belief coordinates of held-out sequences "
                  "(ridge, penalty chosen on a validation split by sequence); 'belief values': "
                  "distinct exact beliefs seen; where there are few (at most 64) the probe's "
                  "prediction is assigned to the nearest one and scored against the truth, "
                  "chance = the most frequent one's share"])


def _machine_row(name: str, label: str, m: dict[str, Any], H: list[float],
                 exact: list[float]) -> list[Any]:
    dev = max(abs(a - b) for a, b in zip(H[1:], exact[1:], strict=True)) if H else None
    return [name, label, m["states"], fmt_ci(m["c_mu"]), fmt_ci(m["h_mu"], 4), fmt(dev, 2)]


def _generation_table(results: dict[str, Any]) -> Table:
    rows = []
    for name, proc in _procs(results):
        t = proc["truth"]
        exact = t["block_entropies"]
        rows.append([name, "truth (exact)", t["n_causal_states"] or "infinite",
                     fmt(t["c_mu"], 4) if t["c_mu"] is not None else "infinite",
                     fmt(t["h_mu_bits"], 4), "0"])
        rows.append(_machine_row(name, "process samples", proc["inferred_process"],
                                 proc["block_entropies_process"], exact))
        for r in proc["runs"]:
            rows.append(_machine_row(name, "model samples: " + _run_label(r),
                                     r["inferred_model"], r["block_entropies_model"], exact))
    procs = _procs(results)
    g = procs[0][1]["generation"] if procs else None
    top = len(procs[0][1]["truth"]["block_entropies"]) - 1 if procs else 0
    shape = (f"{g['n_sequences']} sequences x {fmt(g['length'])} symbols from each model "
             f"(temperature {g['temperature']:g}, after a burn-in of {g['burn_in']}) and from "
             "each process") if g else ""
    return Table("Generation: epsilon-machines inferred by CSSR from samples (bits)",
                 ["process", "samples", "states", "C_mu", "h_mu",
                  f"max |H(L) - exact|, L <= {top}"], rows,
                 [shape, "value [95% moving-block bootstrap percentile interval]; H(L): "
                  "plug-in block entropies of the samples (the process's own samples show the "
                  "plug-in estimator's bias at the same size)"])


def _representation_table(bm: dict[str, Any]) -> Table:
    rows = [["epsilon-machine (the predictor)", bm["causal_states"], fmt(bm["c_mu"], 4)],
            ["Lohr's generator", bm["lohr_states"], fmt(bm["lohr_entropy"], 4)],
            [f"least-entropy {bm['generator_states']}-state generator found",
             bm["generator_states"], fmt(bm["generator_entropy"], 4)]]
    notes = ["state entropy H[states] in bits; C_mu for the epsilon-machine"]
    c = bm.get("clusters")
    if c is not None:
        rows.append([f"transformer: k-means clusters of its {c['layer']} residual stream",
                     c["k"], fmt(c["entropy"], 4)])
        notes.append(f"clusters: {c['criterion']}; {c['n_points']} positions; purity (share of "
                     f"positions whose cluster's majority belief is theirs) {fmt(c['purity'])}")
    return Table("Binary Markov (p = q = 0.4): the predictor, the generators and the transformer",
                 ["representation", "states", "state entropy (bits)"], rows, notes)


# ---- figures ---------------------------------------------------------------------------------
def _grid(n: int, width: float = 10.0, height: float = 3.3) -> tuple[Any, list[Any]]:
    plt = _plt()
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _loss_figure(results: dict[str, Any]) -> Figure:
    procs = _procs(results)
    fig, axes = _grid(len(procs))
    for ax, (name, proc) in zip(axes, procs, strict=True):
        t = proc["truth"]
        for i, r in enumerate(proc["runs"]):
            y, se = r["loss_by_position"], r["loss_by_position_se"]
            x = list(range(len(y)))
            ax.plot(x, y, color=f"C{i}", lw=1.2, label=f"model: {_run_label(r)}")
            ax.fill_between(x, [a - 2 * b for a, b in zip(y, se, strict=True)],
                            [a + 2 * b for a, b in zip(y, se, strict=True)], color=f"C{i}",
                            alpha=0.2, lw=0)
        opt = proc["runs"][-1]["optimal_by_position"]
        ax.plot(range(len(opt)), opt, "k--", lw=1, label="Bayes-optimal (exact beliefs)")
        cond = t["conditional_entropy_nats"]
        ax.plot(range(len(cond)), cond, "o", color="C3", ms=3,
                label="exact H(X_t+1 | X_0..X_t)")
        ax.axhline(t["h_mu_nats"], color="0.4", ls=":", lw=1, label="h_mu")
        ax.set_xlabel("position t in the window (t + 1 symbols seen)")
        ax.set_ylabel("loss (nats per symbol)")
        ax.set_title(_name(name, proc), fontsize=10)
        ax.legend(fontsize=6.5, loc="upper right")
    fig.suptitle("Held-out loss by context position against the exact conditional entropy",
                 fontsize=11)
    fig.tight_layout()
    return figure(fig, title="Loss by position: when the models synchronize",
                  alt="For each process, the trained models' held-out loss at each position of "
                      "the context window, with the exact conditional entropy given the symbols "
                      "seen so far, the Bayes-optimal loss from exact beliefs and the entropy "
                      "rate",
                  caption="Lines: the models' mean loss by position (bands: +-2 standard "
                          "errors); red points: H(X_t+1 | X_0..X_t) from exact block entropies "
                          "(as far as the mixed states can be enumerated: Mess3's never close); "
                          "dashed: the Bayes-optimal predictor's loss on the same sequences; "
                          "dotted: h_mu. A model synchronizes where its curve meets the floor.")


def _probe_figure(results: dict[str, Any]) -> Figure:
    procs = _procs(results)
    fig, axes = _grid(len(procs), height=3.0)
    for ax, (name, proc) in zip(axes, procs, strict=True):
        for i, r in enumerate(proc["runs"]):
            pr = r["probe"]
            ax.plot(range(len(pr["r2"])), pr["r2"], "o-", color=f"C{i}", label=_run_label(r))
            ax.set_xticks(range(len(pr["layers"])), pr["layers"], fontsize=7)
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(min(0.0, *(min(r["probe"]["r2"]) for r in proc["runs"])) - 0.05, 1.05)
        ax.set_xlabel("residual stream read")
        ax.set_ylabel("held-out R^2 (belief state)")
        ax.set_title(_name(name, proc), fontsize=10)
        ax.legend(fontsize=6.5, loc="lower right")
    fig.suptitle("Linear probes from the residual stream to the exact belief state", fontsize=11)
    fig.tight_layout()
    return figure(fig, title="Belief-state probes by layer",
                  alt="For each process, the held-out R^2 of a linear probe from each layer's "
                      "residual stream, and from all layers together, to the exact belief state",
                  caption="R^2 of ridge probes fitted on one set of sequences and scored on "
                          "another; 1 means the belief is a linear function of the stream.")


def _simplex_xy(b: Any) -> tuple[Any, Any]:
    import numpy as np

    b = np.asarray(b, float)
    return b[:, 1] + 0.5 * b[:, 2], b[:, 2] * math.sqrt(3) / 2


def _simplex_figure(rep: Any) -> Figure | None:
    import numpy as np

    pr = rep.probes
    if not pr.simplex_true:
        return None
    plt = _plt()
    true = np.asarray(pr.simplex_true, float)
    pred = np.asarray(pr.simplex_predicted, float)
    colors = np.clip(true, 0, 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    corners = np.array([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2], [0, 0]])
    names = rep.truth.state_names
    for ax, pts, what in ((axes[0], true, "exact belief states"),
                          (axes[1], pred, f"probe's prediction ({pr.simplex_layer})")):
        x, y = _simplex_xy(pts)
        ax.plot(corners[:, 0], corners[:, 1], color="0.5", lw=0.8)
        ax.scatter(x, y, c=colors, s=2, lw=0)
        for (cx, cy), s in zip(corners[:3], names, strict=True):
            ax.annotate(f"state {s}", (cx, cy), fontsize=8, ha="center",
                        xytext=(0, -10 if cy == 0 else 4), textcoords="offset points")
        ax.set_aspect("equal")
        ax.set_xlabel("simplex coordinate Pr(B) + Pr(C)/2")
        ax.set_ylabel("simplex coordinate Pr(C) sqrt(3)/2")
        ax.set_title(what, fontsize=10)
    i = list(pr.layers).index(pr.simplex_layer)
    fig.suptitle(f"{rep.process}: belief simplex, held-out R^2 = {pr.r2[i]:.3f}", fontsize=11)
    fig.tight_layout()
    return figure(fig, title="Mess3's belief simplex: exact and read from the residual stream",
                  alt="Two triangles: the exact belief states of Mess3 form a fractal; beside "
                      "them the linear probe's predictions from the transformer's residual "
                      "stream, each point coloured by its exact belief",
                  caption="Left: exact beliefs of held-out positions in the 2-simplex over "
                          "Mess3's three states (Shai et al. 2024's fractal). Right: the same "
                          "positions as the probe reads them from the residual stream; colour "
                          "= the exact belief (red, green, blue = the three states).")


def _block_figure(results: dict[str, Any]) -> Figure:
    procs = _procs(results)
    fig, axes = _grid(len(procs), height=3.0)
    for ax, (name, proc) in zip(axes, procs, strict=True):
        exact = proc["truth"]["block_entropies"]
        L = list(range(1, len(exact)))

        def dev(H: list[float], exact: list[float] = exact) -> list[float]:
            return [h - e for h, e in zip(H[1:], exact[1:], strict=True)]

        ax.axhline(0, color="C3", lw=1.5, label="exact")
        ax.plot(L, dev(proc["block_entropies_process"]), "ks--", ms=3, lw=1,
                label="process samples")
        for i, r in enumerate(proc["runs"]):
            ax.plot(L, dev(r["block_entropies_model"]), "o-", color=f"C{i}", ms=3, lw=1,
                    label="model samples: " + _run_label(r))
        ax.set_xlabel("block length L")
        ax.set_ylabel("H(L) - exact H(L) (bits)")
        ax.set_title(_name(name, proc), fontsize=10)
        ax.legend(fontsize=6.5)
    fig.suptitle("Block entropies of generated sequences against the exact ones", fontsize=11)
    fig.tight_layout()
    return figure(fig, title="Block entropies: generated against exact",
                  alt="For each process, the plug-in block entropy H(L) of the models' samples "
                      "and of the process's own samples minus the exact H(L), for L up to 10",
                  caption="0 = the exact block entropy. The process's own samples (black) show "
                          "the plug-in estimator's downward bias at this sample size; a model "
                          "that generates the process lies on them, one whose samples are more "
                          "random lies above.")


def _cluster_figure(rep: Any) -> Figure | None:
    import numpy as np

    c = rep.clusters
    if c is None:
        return None
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    xy = np.asarray(c.pca, float)
    labels, beliefs = np.asarray(c.labels), np.asarray(c.belief_labels)
    marks = "o^sDv<>p"
    for j in range(c.k):
        for m in range(int(beliefs.max()) + 1):
            sel = (labels == j) & (beliefs == m)
            if sel.any():
                a.scatter(xy[sel, 0], xy[sel, 1], s=8, color=f"C{j}", marker=marks[m % 8],
                          lw=0, label=f"cluster {j + 1}, belief {m + 1}")
    a.set_xlabel("principal component 1")
    a.set_ylabel("principal component 2")
    a.set_title(f"{c.layer} residual stream ({c.n_points} positions)", fontsize=10)
    a.legend(fontsize=6.5, markerscale=1.5)
    b.plot(c.k_values, c.silhouette, "o-")
    b.axvline(c.k, color="C3", ls="--", lw=1, label=f"chosen k = {c.k}")
    b.set_xlabel("k (k-means clusters)")
    b.set_ylabel("mean silhouette")
    b.set_title("choice of k", fontsize=10)
    b.legend(fontsize=8)
    fig.suptitle(f"{rep.process}: what the transformer's residual stream holds", fontsize=11)
    fig.tight_layout()
    return figure(fig, title="Binary Markov: clusters of the residual stream",
                  alt="The binary Markov model's last residual stream projected on its two "
                      "principal components, coloured by k-means cluster, marked by exact "
                      "belief state, and the silhouette score against k",
                  caption="Colour: k-means cluster; marker: the exact belief state (the causal "
                          "state, once one symbol is seen). Right: k is the silhouette's "
                          "maximum.")


def _figures(results: dict[str, Any], objects: dict[str, list[Any]]) -> list[Figure]:
    if not _procs(results):
        return []
    figs = [_loss_figure(results), _probe_figure(results)]
    if objects.get("mess3"):
        simplex = _simplex_figure(objects["mess3"][-1])
        if simplex is not None:
            figs.append(simplex)
    figs.append(_block_figure(results))
    if objects.get("binary-markov"):
        clusters = _cluster_figure(objects["binary-markov"][-1])
        if clusters is not None:
            figs.append(clusters)
    return figs


# ---- verdicts ------------------------------------------------------------------------------
def _prediction_text(name: str, proc: dict[str, Any], r: dict[str, Any], context: int) -> str:
    t = proc["truth"]
    text = (f"{_name(name, proc)}, model {_run_label(r)}: held-out loss {fmt_ci(r['loss'], 4)} "
            f"nats per symbol, {_signed(r['gap_h_mu'])} above the entropy rate h_mu = "
            f"{fmt(t['h_mu_nats'], 4)} nats. The best predictor with the same context (exact "
            f"beliefs) loses {fmt_ci(r['optimal'], 4)}, so the model's own shortfall is "
            f"{_signed(r['excess'])} nats; the rest of loss - h_mu is the cost of synchronizing "
            f"inside a window of {context} symbols. At the last position the model loses "
            f"{fmt(r['loss_by_position'][-1], 4)} nats against the optimum's "
            f"{fmt(r['optimal_by_position'][-1], 4)}.")
    tol, opt_t = t["sync_tolerance_nats"], t["synchronized_from"]
    exact = (f"the exact conditional entropy comes within {tol:g} nats of h_mu at position "
             f"{opt_t}" if opt_t is not None else
             f"the exact conditional entropy is not within {tol:g} nats of h_mu at any position "
             f"it is known for (0 to {len(t['conditional_entropy_nats']) - 1})")
    q = max(1, len(r["loss_by_position"]) // 4)
    text += (f" Synchronization: {exact}; the model's excess over the optimum is "
             f"{_signed(r['excess_first_quarter'])} nats over the first {q} positions and "
             f"{_signed(r['excess_last_quarter'])} over the last {q}.")
    if r["learned_only_marginal"]:
        text += (f" It learned nothing beyond the symbol frequencies: its loss is within two "
                 f"standard errors of H(X) = {fmt(t['marginal_nats'], 4)} nats, the loss of a "
                 "predictor with no memory.")
    return text


def _probe_text(r: dict[str, Any]) -> str:
    pr = r["probe"]
    layers = ", ".join(f"{k} {fmt(v)}" for k, v in zip(pr["layers"][:-1], pr["r2"][:-1],
                                                       strict=True))
    text = (f"A linear probe reads the belief state from the residual stream with held-out "
            f"R^2 = {fmt(pr['r2'][-1])} from all layers together ({layers}).")
    if pr["accuracy"]:
        text += (f" Beliefs take {pr['n_belief_values']} values here; the probe names the right "
                 f"one for {fmt(100 * pr['accuracy'][-1], 3)}% of held-out positions (chance "
                 f"{fmt(100 * pr['chance'], 3)}%).")
    return text


def _machine(m: dict[str, Any]) -> str:
    return (f"{m['states']} states, C_mu = {fmt_ci(m['c_mu'])} bits, h_mu = "
            f"{fmt_ci(m['h_mu'], 4)} bits")


def _generation_text(name: str, proc: dict[str, Any], r: dict[str, Any]) -> str:
    t, g, ip = proc["truth"], proc["generation"], proc["inferred_process"]
    truth = (f"{t['n_causal_states']} states, C_mu = {fmt(t['c_mu'], 4)}" if t["c_mu"] is not None
             else "infinitely many causal states")
    text = (f"Generation: from {fmt(g['n_sequences'] * g['length'])} symbols the model sampled, "
            f"CSSR (max history {proc['max_history']}) infers {_machine(r['inferred_model'])}; "
            f"from as many symbols of the process itself, {_machine(ip)}; the truth: {truth}, "
            f"h_mu = {fmt(t['h_mu_bits'], 4)} bits.")
    vs = r["vs_process"]
    if vs["states_equal"] and vs["c_mu_overlap"] and vs["h_mu_overlap"]:
        text += (" By this inference the model's samples cannot be told from the process's: "
                 "the same number of states and overlapping intervals.")
    else:
        parts = []
        if not vs["states_equal"]:
            parts.append(f"{r['inferred_model']['states']} states against "
                         f"{ip['states']}")
        for k, what in (("c_mu_overlap", "C_mu"), ("h_mu_overlap", "h_mu")):
            if vs[k] is False:
                parts.append(f"{what} intervals that do not overlap")
        text += (" The model's samples are not the process's: " + "; ".join(parts) + ".")
    if t["c_mu"] is None:
        text += (" (With infinitely many causal states, CSSR's finite machines only approximate "
                 "the process and grow with the data; the comparison that counts is with the "
                 "process's own samples of the same size.)")
    return text


def _representation_text(bm: dict[str, Any]) -> str:
    text = (f"Prediction is not generation (binary Markov, p = q = 0.4): predicting needs the "
            f"epsilon-machine's {bm['causal_states']} causal states, C_mu = "
            f"{fmt(bm['c_mu'], 4)} bits, while Lohr's {bm['lohr_states']}-state generator "
            f"needs {fmt(bm['lohr_entropy'], 4)} bits and the least-entropy "
            f"{bm['generator_states']}-state generator found {fmt(bm['generator_entropy'], 4)}.")
    c = bm.get("clusters")
    if c is not None:
        same = c["k"] == bm["causal_states"]
        text += (f" The trained transformer, a predictor, holds {c['k']} clusters in its "
                 f"{c['layer']} residual stream (k-means, silhouette criterion), "
                 f"{'as many as the causal states' if same else 'not the number of causal states'}"
                 f", with entropy {fmt(c['entropy'], 4)} bits against C_mu = "
                 f"{fmt(bm['c_mu'], 4)}; {fmt(100 * c['purity'], 3)}% of positions sit in the "
                 "cluster of their belief state.")
    return text


def _verdicts(results: dict[str, Any], context: int) -> list[str]:
    out = []
    for name, proc in _procs(results):
        for r in proc["runs"]:
            out.append(" ".join([_prediction_text(name, proc, r, context), _probe_text(r),
                                 _generation_text(name, proc, r)]))
    if results.get("binary_markov"):
        out.append(_representation_text(results["binary_markov"]))
    return out


def _flags(results: dict[str, Any]) -> list[str]:
    flags = []
    failed = results.get("failed_runs", {})
    for stage, n in failed.items():
        if n:
            flags.append(f"{n} {stage} runs failed and are left out")
    for name in results.get("missing", []):
        flags.append(f"{name}: no finished probe run, no results")
    for name, proc in _procs(results):
        for r in proc["runs"]:
            if r["learned_only_marginal"]:
                flags.append(f"{name}, {_run_label(r)}: learned nothing beyond the symbol "
                             f"frequencies (loss {fmt(r['loss']['value'], 4)} nats, H(X) = "
                             f"{fmt(proc['truth']['marginal_nats'], 4)})")
        t, ip = proc["truth"], proc["inferred_process"]
        if t["n_causal_states"] is not None and ip["states"] != t["n_causal_states"]:
            flags.append(f"{name}: CSSR on the process's own samples found {ip['states']} states "
                         f"(truth {t['n_causal_states']}): the inference's own error at this "
                         "sample size")
    return flags


def _headline(results: dict[str, Any]) -> str:
    procs = _procs(results)
    if not procs:
        return "no results"
    main = [(n, p, p["runs"][-1]) for n, p in procs]
    gaps = ", ".join(f"{n} {fmt(r['gap_h_mu']['value'], 2)}" for n, _, r in main)
    r2 = ", ".join(f"{n} {fmt(r['probe']['r2'][-1], 2)}" for n, _, r in main)
    states = ", ".join(f"{n} {r['inferred_model']['states']}/{p['inferred_process']['states']}"
                       for n, p, r in main)
    return (f"loss - h_mu (nats): {gaps}; belief R^2: {r2}; CSSR states from model/process "
            f"samples: {states}")


def section(config: Any, results: dict[str, Any], objects: dict[str, list[Any]]) -> Section:
    procs = _procs(results)
    g = procs[0][1]["generation"] if procs else None
    setup = [
        "Processes: " + "; ".join(
            f"{_name(n, p)} (h_mu = {fmt(p['truth']['h_mu_bits'], 4)} bits, "
            + (f"C_mu = {fmt(p['truth']['c_mu'], 4)} bits)" if p["truth"]["c_mu"] is not None
               else "infinitely many causal states)") for n, p in procs) + ".",
        f"Models (d_model, layers, heads): {', '.join(str(tuple(m)) for m in config.models)}, "
        f"context {config.context}, vocabulary = the alphabet; each trained on one sampled "
        f"sequence of its process (training tokens of the longest run per process: "
        f"{', '.join(f'{n} {fmt(t, 2)}' for n, t in zip(config.processes, config.tokens, strict=True))}"
        f"; fractions {', '.join(f'{f:g}' for f in config.fractions)}), batch "
        f"{config.batch_size}, AdamW at lr {config.lr:g} with warm-up and cosine decay; the "
        f"checkpoint with the best validation loss is measured. Seed {config.seed}.",
        f"Measured on fresh sequences with their exact belief states: {config.n_eval} windows "
        f"for the loss; probes fitted on {config.n_probe_fit} sequences and scored on "
        f"{config.n_probe_test} others. Generation: " + (
            f"{g['n_sequences']} sequences of {fmt(g['length'])} symbols per model at "
            f"temperature {g['temperature']:g} (each symbol sees at least {g['min_context']} "
            f"before it, a cached window restarted from its last {g['min_context']} symbols), "
            f"and as many from the process; CSSR at alpha 0.001 with "
            f"{config.bootstrap} moving-block bootstrap resamples." if g else "none."),
    ]
    tables: list[Any] = []
    if procs:
        tables += [_prediction_table(results), _probe_table(results), _generation_table(results)]
    if results.get("binary_markov"):
        tables.append(_representation_table(results["binary_markov"]))
    flags = _flags(results)
    return Section(key="prediction-generation", title=TITLE, headline=_headline(results),
                   question=QUESTION, setup=setup, config=config.to_dict(), tables=tables,
                   figures=_figures(results, objects), verdict=_verdicts(results, config.context),
                   flags=flags, status="flagged" if flags else "ok")
