"""Does a downstream metric scale predictably? A classifier after Lourie et al. (2025).

Lourie et al. found that of 46 downstream tasks in Gadre et al. (2024) only 18 scale predictably;
the others are noisy, non-monotone, inverse (worse with scale) or show a breakthrough (flat, then a
sharp rise). For each metric ``y`` against a scale ``x`` (training compute, say), with ``u = ln x``
and ``y`` oriented so that higher is better:

1. *non-monotone*: a quadratic in ``u`` beats a line (F-test, p < ``alpha_strict``), its vertex lies
   inside the central 80% of ``u`` and the reversal past it exceeds twice the residual noise;
2. *inverse*: Spearman correlation of ``u`` and ``y`` negative with p < ``alpha``;
3. *noisy*: no significant monotone trend (Spearman p >= ``alpha``), or signal-to-noise (range of
   the best smooth fit over its residual SD) below ``snr_min``;
4. *breakthrough*: a sigmoid in ``u`` beats a line by more than ``bic_margin`` in BIC, with its
   10-90% rise narrower than a third of the ``u`` range, its midpoint inside the data, and at least a
   quarter of the points on the floor before it;
5. otherwise the best monotone model (line or sigmoid, by BIC) is fitted on the smaller scales and
   must predict the largest ``holdout`` fraction within ``max(2 noise, tol)``: *predictable*, or
   *noisy* ("does not extrapolate").
Every verdict comes with the statistics behind it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, ConvergenceWarning, DataError
from occamlab.scaling._data import column
from occamlab.scaling._fit import fit
from occamlab.scaling._forms import Sigmoid

__all__ = ["MetricVerdict", "DownstreamResult", "classify_downstream", "VERDICTS"]

VERDICTS = ("predictable", "noisy", "non-monotone", "inverse", "breakthrough")


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    verdict: str
    reason: str
    n_points: int
    spearman: float
    spearman_p: float
    snr: float
    quadratic_p: float
    sigmoid_bic_gain: float
    extrapolation_error: float
    noise: float


@dataclass(frozen=True)
class DownstreamResult(Rendered):
    x_name: str
    verdicts: tuple[MetricVerdict, ...]
    settings: Mapping[str, float]

    def counts(self) -> dict[str, int]:
        return {v: sum(m.verdict == v for m in self.verdicts) for v in VERDICTS}

    def _tables(self) -> list[Table]:
        rows = [[m.metric, m.verdict, m.spearman, m.spearman_p, m.snr, m.quadratic_p, m.sigmoid_bic_gain,
                 m.extrapolation_error, m.reason] for m in self.verdicts]
        c = self.counts()
        notes = [", ".join(f"{k}: {v}" for k, v in c.items()),
                 f"spearman, p: rank correlation of the metric with ln {self.x_name} and its "
                 "p-value; SNR: range of the best smooth fit over the residual SD",
                 "quadratic p: F-test of a quadratic against a line in ln x (a reversal); "
                 "sigmoid BIC gain: BIC of a line minus BIC of a sigmoid (> 0 favours a sharp "
                 "rise, a breakthrough)",
                 "held-out RMS error: the best monotone model fitted on the smaller scales, "
                 "predicting the largest; '-': not computed because an earlier test decided the "
                 "verdict (the order is in the docs of classify_downstream)"]
        return [Table(f"Downstream scaling against {self.x_name}",
                      ["metric", "verdict", "spearman", "p", "SNR", "quadratic p",
                       "sigmoid BIC gain", "held-out RMS error", "why"], rows, notes)]


def _bic(sse: float, n: int, k: int) -> float:
    return n * math.log(max(sse, 1e-300) / n) + k * math.log(n)


def _poly(u: np.ndarray, y: np.ndarray, deg: int) -> tuple[np.ndarray, float]:
    c = np.polyfit(u, y, deg)
    return c, float(np.sum((np.polyval(c, u) - y) ** 2))


def _sigmoid(u: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], float] | None:
    try:
        with warnings.catch_warnings():
            # only the residual sum of squares is used: a sigmoid that degenerates into a line
            # (a flat direction the polish cannot finish) is still a valid comparison
            warnings.simplefilter("ignore", ConvergenceWarning)
            r = fit(Sigmoid(), {"x": np.exp(u), "y": y}, target="y", loss_fn="lsq", max_polish_iter=50)
    except (ConfigError, DataError):
        return None
    sse = float(np.sum(np.square(r.residuals)))
    return dict(r.params), sse


def _holdout_error(u: np.ndarray, y: np.ndarray, *, holdout: float, use_sigmoid: bool) -> float:
    """RMS error on the largest ``holdout`` fraction of ``u`` of the monotone model (a sigmoid if
    asked and it fits, else a line) fitted on the rest; NaN with under 5 training points."""
    cut = np.quantile(u, 1 - holdout)
    tr, te = u < cut, u >= cut
    if not (tr.sum() >= 5 and te.sum() >= 1):
        return math.nan
    pred = None
    if use_sigmoid:
        s2 = _sigmoid(u[tr], y[tr])
        if s2:
            p = s2[0]
            z = np.clip(-p["s"] * (u[te] - p["c"]), -700, 700)
            pred = p["lo"] + (p["hi"] - p["lo"]) / (1 + np.exp(z))
    if pred is None:
        pred = np.polyval(np.polyfit(u[tr], y[tr], 1), u[te])
    return float(np.sqrt(np.mean((pred - y[te]) ** 2)))


def _classify(name: str, u: np.ndarray, y: np.ndarray, *, alpha: float, alpha_strict: float,
              snr_min: float, bic_margin: float, holdout: float, tol: float) -> MetricVerdict:
    n = len(u)
    rho, p_rho = stats.spearmanr(u, y)
    rho, p_rho = (0.0, 1.0) if not np.isfinite(rho) else (float(rho), float(p_rho))
    c1, sse1 = _poly(u, y, 1)
    c2, sse2 = _poly(u, y, 2)
    F = (sse1 - sse2) / max(sse2 / (n - 3), 1e-300)
    p_quad = float(stats.f.sf(F, 1, n - 3)) if sse2 > 0 else 0.0
    sig = _sigmoid(u, y)
    bic_lin = _bic(sse1, n, 2)
    bic_sig = _bic(sig[1], n, 4) if sig else math.inf
    gain = bic_lin - bic_sig
    best_sse = min(sse1, sse2, sig[1] if sig else math.inf)
    noise = math.sqrt(best_sse / max(n - 3, 1))
    fitted = np.polyval(c2, u) if sse2 <= (sig[1] if sig else math.inf) else None
    if fitted is None and sig:
        p = sig[0]
        fitted = p["lo"] + (p["hi"] - p["lo"]) / (1 + np.exp(np.clip(-p["s"] * (u - p["c"]), -700, 700)))
    signal = float(np.ptp(fitted if fitted is not None else np.polyval(c1, u)))
    snr = signal / max(noise, 1e-12)

    def verdict(v: str, why: str, err: float = math.nan) -> MetricVerdict:
        return MetricVerdict(name, v, why, n, rho, p_rho, snr, p_quad, gain, err, noise)

    # 1. non-monotone
    if c2[0] != 0:
        uv = -c2[1] / (2 * c2[0])
        lo_u, hi_u = np.quantile(u, [0.1, 0.9])
        if p_quad < alpha_strict and lo_u < uv < hi_u:
            ends = np.polyval(c2, np.array([u.min(), u.max()]))
            reversal = min(abs(np.polyval(c2, uv) - ends[0]), abs(np.polyval(c2, uv) - ends[1]))
            if reversal > 2 * noise and (not sig or _bic(sse2, n, 3) < bic_sig):
                return verdict("non-monotone", f"quadratic beats a line (p={p_quad:.2g}); reversal "
                               f"{reversal:.3g} > 2 x noise {noise:.3g} at ln x = {uv:.3g}")
    # 2. inverse
    if rho < 0 and p_rho < alpha:
        return verdict("inverse", f"gets worse with scale: Spearman {rho:.2f} (p={p_rho:.2g})")
    # 3. noisy
    if p_rho >= alpha:
        return verdict("noisy", f"no significant trend: Spearman {rho:.2f} (p={p_rho:.2g})")
    if snr < snr_min:
        return verdict("noisy", f"signal-to-noise {snr:.2f} < {snr_min:g}")
    # 4. breakthrough
    if sig and gain > bic_margin:
        p = sig[0]
        width = 2 * math.log(9) / max(abs(p["s"]), 1e-12)
        floor = np.mean(u < p["c"] - width / 2)
        if width < np.ptp(u) / 3 and u.min() < p["c"] < u.max() and floor >= 0.25:
            return verdict("breakthrough", f"sigmoid beats a line by {gain:.1f} BIC; rise width "
                           f"{width:.2f} in ln x, {100 * floor:.0f}% of points on the floor")
    # 5. extrapolation
    err = _holdout_error(u, y, holdout=holdout, use_sigmoid=sig is not None and gain > 2.0)
    if err > max(2 * noise, tol):  # False when err is NaN (too few points to hold out)
        return verdict("noisy", f"does not extrapolate: held-out RMS error {err:.3g} > "
                       f"max(2 x noise {noise:.3g}, tol {tol:g})", err)
    return verdict("predictable", f"monotone, SNR {snr:.1f}; held-out RMS error {err:.3g}", err)


def classify_downstream(
    data: Any,
    *,
    x: str,
    metrics: Sequence[str],
    higher_is_better: bool | Mapping[str, bool] = True,
    alpha: float = 0.05,
    alpha_strict: float = 0.01,
    snr_min: float = 3.0,
    bic_margin: float = 10.0,
    holdout: float = 0.2,
    tol: float = 0.02,
    source: str = "data",
) -> DownstreamResult:
    """Classify how each metric column scales with column ``x`` (must be > 0; logs are taken)."""
    if not metrics:
        raise ConfigError("no metric columns given")
    X = column(data, x, source=source, role="scale")
    if not np.all(np.isfinite(X) & (X > 0)):
        raise DataError(f"{source}: column {x!r} must be positive and finite (its log is taken)")
    out = []
    for m in metrics:
        y = column(data, m, source=source, role="metric")
        ok = np.isfinite(y)
        if ok.sum() < 8:
            raise DataError(f"{source}: metric {m!r} has {int(ok.sum())} finite values; need at least 8")
        hib = higher_is_better.get(m, True) if isinstance(higher_is_better, Mapping) else higher_is_better
        yy = y[ok] if hib else -y[ok]
        out.append(_classify(m, np.log(X[ok]), yy, alpha=alpha, alpha_strict=alpha_strict,
                             snr_min=snr_min, bic_margin=bic_margin, holdout=holdout, tol=tol))
    settings = {"alpha": alpha, "alpha_strict": alpha_strict, "snr_min": snr_min, "bic_margin": bic_margin,
                "holdout": holdout, "tol": tol}
    return DownstreamResult(x_name=x, verdicts=tuple(out), settings=settings)
