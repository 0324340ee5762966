"""Figures for fits: data and fitted curves, residuals, held-out points (matplotlib, imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_fit", "plot_isoflop", "plot_extrapolation"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | None) -> Any:
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        _plt().close(fig)
    return fig


def plot_fit(result: Any, path: str | None = None, *, form: Any = None) -> Any:
    """Observed values against the fitted law, and residuals.

    Two-input laws (Chinchilla, Kaplan) draw one curve per model size against data ``D``; one-input
    laws draw the curve against ``x``; residuals are in the fit's residual space.
    """
    plt = _plt()
    law = form or result.law()
    fig, (ax, axr) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    obs = np.array(result.observed)
    names = list(result.inputs)
    if len(names) == 2:
        a, b = (np.array(result.inputs[k]) for k in names)
        groups = np.unique(a)
        cmap = plt.get_cmap("viridis")
        shown = groups[:: int(np.ceil(len(groups) / 12))]
        for i, g in enumerate(shown):
            m = a == g
            col = cmap(i / max(1, len(shown) - 1))
            ax.scatter(b[m], obs[m], s=12, color=col, label=f"{names[0]}={g:.3g}")
            grid = np.geomspace(b[m].min(), b[m].max() * 3, 60)
            ax.plot(grid, law.predict(result.params, **{names[0]: g, names[1]: grid}), color=col, lw=1)
        ax.set_xlabel(names[1])
        ax.legend(fontsize=6, ncol=2)
        xr = b
    else:
        xv = np.array(result.inputs[names[0]])
        ax.scatter(xv, obs, s=14, color="C0", label="data")
        grid = np.geomspace(xv.min(), xv.max(), 200) if np.all(xv > 0) else np.linspace(xv.min(), xv.max(), 200)
        pred = result.predict(form=law, **{names[0]: grid})
        ax.plot(grid, pred.value, color="C1", label="fit")
        ax.fill_between(grid, pred.lower, pred.upper, color="C1", alpha=0.2,
                        label=f"{100 * result.level:g}% interval")
        ax.set_xlabel(names[0])
        ax.legend(fontsize=8)
        xr = xv
    if np.all(xr > 0):
        ax.set_xscale("log")
        axr.set_xscale("log")
    if law.space in ("log", "log-excess") and np.all(obs > 0):
        ax.set_yscale("log")
    ax.set_ylabel(result.config.get("target", "y"))
    ax.set_title(result.formula, fontsize=9)
    axr.scatter(xr, result.residuals, s=10, color="C2")
    axr.axhline(0, color="k", lw=0.8)
    axr.set_ylabel(f"residual ({result.space})")
    axr.set_xlabel(names[1] if len(names) == 2 else names[0])
    axr.set_title(f"objective {result.objective:.4g}, {result.n_points} points", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_isoflop(result: Any, path: str | None = None, *, title: str | None = None) -> Any:
    """Optimal size per budget with intervals and the fitted power law ``N_opt = G C^a``.

    ``result`` is an :class:`IsoflopResult`; with ``path`` the figure is saved there (PNG, 120 dpi)
    and closed. ``title`` defaults to "Approach 2: isoFLOP vertices". Returns the figure.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    C = np.array(result.budgets)
    n = np.array(result.n_opt)
    ci = np.array(result.n_opt_ci)
    ax.errorbar(C, n, yerr=[n - ci[:, 0], ci[:, 1] - n], fmt="o", color="C0", label="isoFLOP minima")
    grid = np.geomspace(C.min(), C.max() * 10, 50)
    ax.plot(grid, result.n_opt_at(grid), color="C1",
            label=f"N_opt = {result.G:.3g} C^{result.a:.3f} [{result.a_ci[0]:.3f}, {result.a_ci[1]:.3f}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("C (FLOPs)")
    ax.set_ylabel("N_opt (parameters)")
    ax.set_title(title or f"Approach 2: isoFLOP vertices ({len(C)} budgets)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_extrapolation(result: Any, path: str | None = None) -> Any:
    """Predicted against observed for held-out points, with intervals.

    ``result`` is an :class:`ExtrapolationResult`; with ``path`` the figure is saved there and
    closed. Returns the matplotlib figure.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    obs, pred = np.array(result.observed), np.array(result.predicted)
    lo, hi = np.array(result.lower), np.array(result.upper)
    ax.errorbar(obs, pred, yerr=[pred - lo, hi - pred], fmt="o", ms=4, alpha=0.8)
    lim = [min(obs.min(), pred.min()), max(obs.max(), pred.max())]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("observed")
    ax.set_ylabel("predicted")
    ax.set_title(f"{result.mode} by {result.by}: mean |rel. err| {result.mean_abs_relative_error:.3g}",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_backtests(result: Any, path: str | None = None) -> Any:
    """Backtest error ``ln y_hat - ln y`` against distance (decades beyond the largest fitted
    run), one colour per cut-off, with the calibrated band ``+- z sqrt(k^2 d^(2p))`` (the
    extrapolation term alone; each point's own law and noise spread come on top).

    ``result`` is a :class:`CalibratedExtrapolation`; with ``path`` the figure is saved there and
    closed. Returns the matplotlib figure.
    """
    from scipy import stats

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    cut = np.array(result.bt_cutoff)
    d = np.array(result.bt_distance)
    e = np.log(np.array(result.bt_predicted) / np.array(result.bt_observed))
    for c in result.cutoffs:
        m = cut == c
        ax.plot(d[m], e[m], "o", ms=3.5, alpha=0.8, label=f"cut-off {c:.3g}")
    grid = np.linspace(0.0, max(float(d.max()), 1e-3) * 1.05, 100)
    z = stats.norm.ppf(0.5 + result.level / 2)
    band = z * result.growth * np.where(grid > 0, grid**result.power, 0.0)
    ax.fill_between(grid, -band, band, color="0.8", alpha=0.6,
                    label=f"{100 * result.level:g}% extrapolation term")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel(f"decades of {result.by} beyond the largest fitted run")
    ax.set_ylabel(f"ln predicted - ln observed ({result.target})")
    ax.set_title(f"Backtests of {result.form}: coverage {result.coverage:.2f} "
                 f"(old {result.old_coverage:.2f})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
