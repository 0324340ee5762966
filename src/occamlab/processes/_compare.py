"""Prediction vs generation along a parameter sweep ("Prediction is not Generation").

For each value of a swept parameter: ``C_mu`` and ``E`` of the process, the least state entropy
of a ``k``-state generator found by :func:`minimal_generator` (warm-started from the previous
value), and, for the binary Markov process along ``p = q <= 1/2``, the Lohr generator's entropy
``H = h(2p) + 1 - 2p`` (REFERENCE.md). The Lohr crossover, where ``H = C_mu = 1``, is found by
root-finding (0.386454...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.processes._generators import minimal_generator
from occamlab.processes._info import analyze
from occamlab.processes._library import build_process
from occamlab.processes._presentation import entropy_bits

__all__ = ["CompareResult", "compare", "lohr_entropy", "lohr_crossover"]


def lohr_entropy(p: float) -> float:
    """State entropy of the Lohr generator, ``h(2p) + 1 - 2p`` bits (0 <= p <= 1/2)."""
    return float(entropy_bits(np.array([2 * p, 1 - 2 * p]))) + 1.0 - 2.0 * p


def lohr_crossover() -> float:
    """The p in (0, 1/2) above which the Lohr generator beats ``C_mu = 1``: 0.386454..."""
    return float(brentq(lambda p: lohr_entropy(p) - 1.0, 0.3, 0.49, xtol=1e-15))


@dataclass(frozen=True)
class CompareResult(Rendered):
    """Rows of (value, C_mu, E, best generator entropy, Lohr entropy) along a sweep, bits."""

    process: str
    sweep_param: str
    fixed: dict[str, Any]
    values: list[float]
    statistical_complexity: list[float | None]
    excess_entropy: list[float | None]
    generator_entropy: list[float | None]
    lohr_entropy: list[float | None]
    states: int
    max_word_error: list[float | None]
    lohr_beats_cmu: list[float] | None
    generator_beats_cmu: list[float] | None
    lohr_crossover: float | None

    def summary(self) -> list[str]:
        out = []
        if self.lohr_beats_cmu:
            lo, hi = self.lohr_beats_cmu
            out.append(f"Lohr generator beats C_mu on the sampled range [{lo:g}, {hi:g}]"
                       + (f"; exact crossover p = {self.lohr_crossover:.6f}"
                          if self.lohr_crossover else ""))
        gain = [c - g for c, g in zip(self.statistical_complexity, self.generator_entropy,
                                      strict=True) if c is not None and g is not None]
        if self.generator_beats_cmu:
            lo, hi = self.generator_beats_cmu
            out.append(f"best {self.states}-state generator beats C_mu on [{lo:g}, {hi:g}], by up "
                       f"to {max(gain):.4f} bits")
        elif gain:
            out.append(f"no {self.states}-state generator found below C_mu")
        lg = [(v, g, h) for v, g, h in zip(self.values, self.generator_entropy,
                                           self.lohr_entropy, strict=True)
              if g is not None and h is not None]
        if lg:
            worse = sum(1 for _, g, h in lg if g < h - 1e-6)
            out.append(f"Lohr generator minimal? no: a smaller generator was found at {worse} of "
                       f"{len(lg)} points" if worse else
                       "Lohr generator: no smaller generator found at any sampled point")
        return out

    def _tables(self) -> list[Table]:
        rows = [[v, c, e, g, h, w] for v, c, e, g, h, w in zip(
            self.values, self.statistical_complexity, self.excess_entropy,
            self.generator_entropy, self.lohr_entropy, self.max_word_error, strict=True)]
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        return [Table(
            f"Prediction vs generation: {self.process}, sweep {self.sweep_param}"
            + (f" ({fixed})" if fixed else "") + ", bits",
            [self.sweep_param, "C_mu", "E", f"best {self.states}-state H[pi]", "Lohr H[pi]",
             "word error"], rows, self.summary())]

    def plot(self, path: Any, *, format: str | None = None) -> None:
        """Write the figure (C_mu, generator and Lohr entropies, E) to ``path`` (PNG/SVG/PDF).

        ``path`` may be a file name or a binary file object (then give ``format``).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def arr(xs: Sequence[float | None]) -> np.ndarray:
            return np.array([np.nan if x is None else x for x in xs], dtype=float)

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        v = np.asarray(self.values)
        ax.plot(v, arr(self.statistical_complexity), label="C_mu (predictive)", lw=2)
        ax.plot(v, arr(self.generator_entropy), label=f"best {self.states}-state generator")
        if any(x is not None for x in self.lohr_entropy):
            ax.plot(v, arr(self.lohr_entropy), "--", label="Lohr generator")
        ax.plot(v, arr(self.excess_entropy), ":", label="E (lower bound on C_g)")
        if self.lohr_crossover:
            ax.axvspan(self.lohr_crossover, 0.5, color="0.9", zorder=0,
                       label=f"Lohr < C_mu ({self.lohr_crossover:.4f}, 0.5)")
        ax.set_xlabel(self.sweep_param)
        ax.set_ylabel("bits")
        ax.set_title(f"Prediction is not generation: {self.process}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format=format)
        plt.close(fig)


def _range(values: Sequence[float], mask: Sequence[bool]) -> list[float] | None:
    sel = [v for v, m in zip(values, mask, strict=True) if m]
    return [min(sel), max(sel)] if sel else None


def compare(
    name: str,
    sweep_param: str,
    values: Sequence[float],
    *,
    params: Mapping[str, Any] | None = None,
    states: int = 2,
    n_starts: int = 2,
    seed: int = 0,
    word_tol: float = 1e-6,
) -> CompareResult:
    """Sweep one parameter; compare ``C_mu`` with the best ``states``-state generator.

    Parameters
    ----------
    name : str
        A library process.
    sweep_param : str
        The parameter swept over ``values``.
    params : mapping, optional
        Other parameters; a value equal to ``sweep_param`` links it (``{"q": "p"}``: q = p).
    states, n_starts, seed, word_tol :
        Passed to :func:`minimal_generator` (plus a warm start from the previous value).
    """
    if not values:
        raise ConfigError("the sweep needs at least one value")
    fixed = dict(params or {})
    rows: dict[str, list[Any]] = {k: [] for k in ("c", "e", "g", "l", "w")}
    presentations: list[Any] = []
    infos: list[Any] = []
    gens: list[Any] = []
    for v in values:
        pv = {k: (v if str(val) == sweep_param else val) for k, val in fixed.items()}
        pv[sweep_param] = v
        pres = build_process(name, pv)
        presentations.append(pres)
        infos.append(analyze(pres))

    def search(i: int, warm: list[np.ndarray], starts: int) -> Any:
        info = infos[i]
        return minimal_generator(
            presentations[i], states, n_starts=starts,
            seed=seed + i, warm_starts=warm,
            statistical_complexity=info.statistical_complexity,
            excess_entropy=info.excess_entropy, word_tol=word_tol,
            target_states=info.n_causal_states,
        )

    def warm_of(r: Any) -> list[np.ndarray]:
        return [np.asarray(r.matrices)] if r is not None and r.converged else []

    # Forward pass with random starts, warm-started from the previous value; then a backward
    # pass warm-started from the next value (cheap: one start), keeping the better generator.
    for i in range(len(values)):
        gens.append(search(i, warm_of(gens[-1]) if gens else [], n_starts))
    for i in range(len(values) - 2, -1, -1):
        back = warm_of(gens[i + 1])
        if back:
            r = search(i, back, 0)
            if r.converged and (not gens[i].converged
                            or r.generative_complexity < gens[i].generative_complexity):
                gens[i] = r
    for pres, info, r in zip(presentations, infos, gens, strict=True):
        lohr = None
        if name == "binary-markov" and abs(pres.params["p"] - pres.params["q"]) < 1e-12 \
                and 0 < pres.params["p"] <= 0.5:
            lohr = lohr_entropy(pres.params["p"])
        rows["c"].append(info.statistical_complexity)
        rows["e"].append(info.excess_entropy)
        rows["g"].append(r.generative_complexity)
        rows["l"].append(lohr)
        rows["w"].append(r.max_word_error)
    vals = [float(v) for v in values]
    lohr_mask = [c is not None and h is not None and h < c - 1e-12
                 for c, h in zip(rows["c"], rows["l"], strict=True)]
    gen_mask = [c is not None and g is not None and g < c - 1e-6
                for c, g in zip(rows["c"], rows["g"], strict=True)]
    has_lohr = any(h is not None for h in rows["l"])
    return CompareResult(
        process=name, sweep_param=sweep_param, fixed={k: v for k, v in fixed.items()},
        values=vals, statistical_complexity=rows["c"], excess_entropy=rows["e"],
        generator_entropy=rows["g"], lohr_entropy=rows["l"], states=states,
        max_word_error=rows["w"], lohr_beats_cmu=_range(vals, lohr_mask),
        generator_beats_cmu=_range(vals, gen_mask),
        lohr_crossover=lohr_crossover() if has_lohr else None,
    )
