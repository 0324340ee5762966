"""The figures of the ``transfer`` section, drawn from its results dictionary."""

from __future__ import annotations

from typing import Any

from occamlab.reports import Figure, figure

from ._numbers import fmt

__all__ = ["figures"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors(sizes: list[float]) -> dict[float, Any]:
    plt = _plt()
    cmap = plt.get_cmap("viridis")
    return {n: cmap(i / max(1, len(sizes) - 1) * 0.85) for i, n in enumerate(sizes)}


def _dt_panel(ax: Any, e: dict[str, Any], title: str) -> None:
    """D_T against D_F per model size, the fitted law, and the runs left out of it."""
    import numpy as np

    pts = e.get("points", [])
    sizes = sorted({p["N"] for p in pts})
    col = _colors(sizes)
    good = [p for p in pts if p["status"] == "transfer"]
    lo = min((p["D_T"] for p in good), default=1.0)
    hi = max((p["D_T"] for p in good), default=10.0)
    floor, ceil = lo / 3, hi * 3
    for n in sizes:
        mine = [p for p in good if p["N"] == n]
        ax.plot([p["D_F"] for p in mine], [p["D_T"] for p in mine], "o", color=col[n],
                label=f"N = {fmt(n)}")
        if "alpha" in e and e["alpha"]["value"] is not None:
            x = np.geomspace(min(p["D_F"] for p in pts), max(p["D_F"] for p in pts), 20)
            ax.plot(x, e["k"]["value"] * x ** e["alpha"]["value"] * n ** e["beta"]["value"],
                    "-", color=col[n], lw=1)
    oss = [p for p in pts if p["status"].startswith("ossified")]
    beyond = [p for p in pts if p["status"].startswith("beyond")]
    for i, p in enumerate(oss):  # spread in x so that runs at the same D_F stay countable
        same = [q for q in oss if q["D_F"] == p["D_F"]]
        j = same.index(p) - (len(same) - 1) / 2
        ax.plot([p["D_F"] * 1.12 ** j], [floor], "x", color=col[p["N"]], ms=8, mew=2,
                label=f"ossified (D_T <= 0): {len(oss)} run{'s' * (len(oss) > 1)}, "
                "not in the fit" if i == 0 else None)
    if beyond:
        ax.plot([p["D_F"] for p in beyond], [ceil] * len(beyond), "^", color="C1", ms=7,
                label="below the scratch asymptote, not in the fit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fine-tuning data D_F (bytes)")
    ax.set_ylabel("effective data transferred D_T (bytes)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="best")


def _dt_figure(config: Any, results: dict[str, Any]) -> Figure:
    plt = _plt()
    fig, axes = plt.subplots(1, len(config.sources), figsize=(4.2 * len(config.sources), 3.6),
                             squeeze=False)
    for ax, src in zip(axes[0], config.sources, strict=True):
        _dt_panel(ax, results["main"]["sources"].get(src, {}), f"{src} to {config.target}")
    fig.suptitle("Effective data transferred, by model size", fontsize=10)
    fig.tight_layout()
    return figure(fig, title="Effective data transferred",
                  alt=f"D_T against D_F on log axes for each model size and each source "
                      f"({', '.join(config.sources)}), with the fitted law D_T = k D_F^alpha "
                      "N^beta as lines and the ossified runs marked at the bottom",
                  caption="Points: fine-tuned runs (D_T from the from-scratch curve of the same "
                          "size). Lines: the fitted law. Crosses at the bottom: fine-tunes that "
                          "did no better than scratch (D_T <= 0); triangles at the top: below "
                          "the from-scratch asymptote (infinite D_T). Both are left out of the "
                          "log-space fit and counted in the table.")


def _scratch_figure(config: Any, results: dict[str, Any]) -> Figure:
    """The target's from-scratch curves with their fits, and the fine-tuned losses read on them."""
    import numpy as np

    plt = _plt()
    runs = [r for r in results["runs"]["scratch"] if r["dist"] == "target"]
    e = results["main"]["sources"].get(config.sources[0], {})
    sizes = sorted({r["N"] for r in runs})
    col = _colors(sizes)
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for n in sizes:
        mine = sorted((r for r in runs if r["N"] == n), key=lambda r: r["D"])
        ax.plot([r["D"] for r in mine], [r["loss"] for r in mine], "o", color=col[n],
                label=f"N = {fmt(n)} from scratch")
        c = e.get("scratch", {}).get(f"{n:g}")
        if c is not None and mine:
            x = np.geomspace(mine[0]["D"] / 2, mine[-1]["D"] * 2, 40)
            ax.plot(x, c["E"] + c["A"] * x ** -c["alpha"], "-", color=col[n], lw=1)
        ft = [p for p in e.get("points", []) if p["N"] == n]
        ax.plot([p["D_F"] for p in ft], [p["loss"] for p in ft], "s", mfc="none", color=col[n])
    ax.plot([], [], "s", mfc="none", color="k", label=f"fine-tuned from {config.sources[0]}")
    ax.set_xscale("log")
    ax.set_xlabel("target training data D (bytes)")
    ax.set_ylabel("best held-out loss (nats per byte)")
    ax.set_title(f"From scratch on {config.target}, and fine-tuned", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    return figure(fig, title="From-scratch curves and fine-tuned losses",
                  alt=f"Best held-out loss against training bytes for each model size trained "
                      f"from scratch on {config.target}, their fitted curves E + A D^-alpha, and "
                      f"the fine-tuned losses at their D_F",
                  caption="A fine-tuned run (hollow square) reaches some loss with D_F bytes; the "
                          "from-scratch curve of its size (line) needs D_E bytes for that loss, "
                          "and D_T = D_E - D_F.")


def _alpha_figure(results: dict[str, Any]) -> Figure:
    import numpy as np

    fam = results["process"]
    members = fam["members"]
    pts = [m for m in members if "alpha" in m and m["alpha"]["value"] is not None]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 3.4))
    for m in pts:
        a = m["alpha"]
        lo, hi = a["ci"]
        err = [[a["value"] - lo], [hi - a["value"]]] if lo is not None and hi is not None else None
        ax.errorbar([m["kl_nats"]], [a["value"]], yerr=err, fmt="o", color="C0", capsize=4)
        ax.annotate(f"shift {m['shift']:g}", (m["kl_nats"], a["value"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    missing = [m for m in members if m not in pts]
    if missing:
        ax.plot([m["kl_nats"] for m in missing], [0.0] * len(missing), "x", color="C3", ms=8,
                label="no law fitted (too few runs with D_T > 0)")
    s = fam["slope"]
    if s.get("value") is not None and len(pts) >= 2:
        x = np.array([m["kl_nats"] for m in pts])
        y = np.array([m["alpha"]["value"] for m in pts])
        xs = np.linspace(0, x.max() * 1.05, 20)
        ax.plot(xs, y.mean() + s["value"] * (xs - x.mean()), "--", color="C7",
                label="least-squares line")
    if missing or len(pts) >= 2:
        ax.legend(fontsize=7)
    ax.set_xlabel("KL(target || source), nats per symbol (exact)")
    ax.set_ylabel("alpha (95% interval)")
    ax.set_title("Process family: alpha against the source's divergence", fontsize=10)
    return figure(fig, title="alpha against the exact divergence",
                  alt="The fitted exponent alpha with its bootstrap interval for each source of "
                      "the Markov family, against the source's exact KL divergence rate from the "
                      "target, with a least-squares line",
                  caption="If alpha tracks proximity as Hernandez et al. found (the closer "
                          "source had the smaller alpha), the points rise to the right. A cross "
                          "on the axis: a source whose fine-tunes gave too few positive D_T.")


def _lora_figure(results: dict[str, Any]) -> Figure | None:
    blocks = [b for b in results["lora"] if "modes" in b]
    if not blocks:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(blocks), figsize=(5.4 * len(blocks), 3.4), squeeze=False)
    for ax, b in zip(axes[0], blocks, strict=True):
        for i, e in enumerate(b["modes"]):
            if e["mode"] == "full":
                continue
            ax.plot(e["D_F"], e["gap"], "o-", color=f"C{i}",
                    label=f"{e['mode']} ({e['trainable']} parameters)")
        ax.axhline(0, color="k", lw=1)
        ax.axhline(b["tolerance"], color="C3", ls=":", lw=1, label="falls-behind threshold")
        ax.set_xscale("log")
        ax.set_xlabel("fine-tuning data D_F (bytes)")
        ax.set_ylabel("loss minus full fine-tuning's (nats)")
        ax.set_title(f"model {b['model']}: LoRA and frozen embeddings", fontsize=10)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return figure(fig, title="LoRA ranks against full fine-tuning",
                  alt="The held-out loss of frozen-embedding and LoRA fine-tunes minus that of "
                      "full fine-tuning, against D_F, with the threshold for falling behind",
                  caption="Above the dotted line a mode has fallen behind full fine-tuning.")


def _l2l_figure(results: dict[str, Any]) -> Figure | None:
    import numpy as np

    pairs = [(k, v) for k, v in results["loss_to_loss"].items()
             if isinstance(v, dict) and v.get("points")]
    if not pairs:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.4 * len(pairs), 3.4), squeeze=False)
    for ax, (name, e) in zip(axes[0], pairs, strict=True):
        x = np.array([p[0] for p in e["points"]])
        y = np.array([p[1] for p in e["points"]])
        ax.plot(x, y, "o", color="C0", label="models (N, D)")
        xs = np.linspace(x.min(), x.max(), 40)
        if "kappa" in e and np.all(xs > e["E_x"]):
            ax.plot(xs, e["K"]["value"] * (xs - e["E_x"]) ** e["kappa"]["value"] + e["E_y"], "-",
                    color="C1", label=f"kappa = {fmt(e['kappa']['value'])}")
        ax.set_xlabel("loss on the source's held-out set (nats)")
        ax.set_ylabel("target loss (nats)" if name == "train_to_train"
                      else "loss on the target's held-out set (nats)")
        ax.set_title(name.replace("_", "-") + ("" if "kappa" in e else " (no fit)"), fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure(fig, title="Loss-to-loss",
                  alt="Target loss against source loss for the paired from-scratch models "
                      "(train-to-train) and for the source models evaluated on the target "
                      "(train-to-test), with the fitted curves",
                  caption="Each point is one (N, D); the line is y = K (x - E_x)^kappa + E_y.")


def figures(config: Any, results: dict[str, Any], objects: dict[str, Any]) -> list[Figure]:
    out = [_dt_figure(config, results), _scratch_figure(config, results), _alpha_figure(results)]
    for f in (_lora_figure(results), _l2l_figure(results)):
        if f is not None:
            out.append(f)
    return out
