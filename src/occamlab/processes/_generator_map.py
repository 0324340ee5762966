"""Prediction vs generation over a two-parameter grid (the binary Markov (p, q) square).

For every grid point: ``C_mu``, ``E`` and the least state entropy ``C_g^(k)`` of a ``k``-state
generator found by :func:`minimal_generator`, warm-started from the neighbouring points (a sweep
along rows, then along columns, keeping the better generator). ``gain = C_mu - C_g^(k)`` is how
much the best generator beats the predictive model (0 when it does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError
from occamlab.processes._generators import minimal_generator
from occamlab.processes._info import analyze
from occamlab.processes._library import build_process

__all__ = ["GeneratorMap", "generator_map"]


@dataclass(frozen=True)
class GeneratorMap(Rendered):
    """``C_mu``, best k-state generator entropy and gain on a grid ``x_values x y_values``."""

    process: str
    x_param: str
    y_param: str
    x_values: list[float]
    y_values: list[float]
    statistical_complexity: list[list[float | None]]
    generator_entropy: list[list[float | None]]
    excess_entropy: list[list[float | None]]
    states: int

    def gain(self) -> np.ndarray:
        """``C_mu - C_g^(k)`` per grid point (NaN where no generator was found), bits."""
        c = np.array(self.statistical_complexity, dtype=float)
        g = np.array(self.generator_entropy, dtype=float)
        return c - g

    def summary(self) -> list[str]:
        gain = self.gain()
        beats = gain > 1e-6
        n = int(np.isfinite(gain).sum())
        out = [f"best {self.states}-state generator beats C_mu at {int(beats.sum())} of {n} "
               "grid points"]
        if beats.any():
            i, j = np.unravel_index(int(np.nanargmax(gain)), gain.shape)
            out.append(f"largest gain {gain[i, j]:.4f} bits at {self.x_param}="
                       f"{self.x_values[i]:g}, {self.y_param}={self.y_values[j]:g}")
        return out

    def plot(self, path: Any, *, format: str | None = None) -> None:
        """Heat map of ``C_mu - C_g^(k)`` over the grid, written to ``path``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.6, 4.6))
        x, y = np.asarray(self.x_values), np.asarray(self.y_values)
        dx = (x.max() - x.min()) / max(x.size - 1, 1) / 2 or 0.5
        dy = (y.max() - y.min()) / max(y.size - 1, 1) / 2 or 0.5
        # Pixel centres on the grid values.
        im = ax.imshow(self.gain().T, origin="lower", aspect="auto", cmap="viridis",
                       extent=(x.min() - dx, x.max() + dx, y.min() - dy, y.max() + dy))
        fig.colorbar(im, ax=ax, label=f"C_mu - best {self.states}-state H[pi] (bits)")
        ax.set_xlabel(self.x_param)
        ax.set_ylabel(self.y_param)
        ax.set_title(f"Where generation beats prediction: {self.process}")
        fig.tight_layout()
        fig.savefig(path, format=format)
        plt.close(fig)

    def _tables(self) -> list[Table]:
        gain = self.gain()
        rows = [[x, *[None if not np.isfinite(v) else round(float(v), 4) for v in gain[i]]]
                for i, x in enumerate(self.x_values)]
        return [Table(
            f"C_mu - best {self.states}-state generator entropy (bits), {self.process}: rows "
            f"{self.x_param}, columns {self.y_param}",
            [f"{self.x_param} \\ {self.y_param}", *[f"{y:g}" for y in self.y_values]], rows,
            self.summary())]


def generator_map(
    name: str,
    x_param: str,
    x_values: Sequence[float],
    y_param: str,
    y_values: Sequence[float],
    *,
    states: int = 2,
    n_starts: int = 2,
    seed: int = 0,
    word_tol: float = 1e-6,
) -> GeneratorMap:
    """Best ``states``-state generator of ``name`` at every grid point (see module docs)."""
    if not x_values or not y_values or x_param == y_param:
        raise ConfigError("a grid needs two different parameters with at least one value each")
    nx, ny = len(x_values), len(y_values)
    infos = [[analyze(build_process(name, {x_param: x, y_param: y})) for y in y_values]
             for x in x_values]
    best: list[list[Any]] = [[None] * ny for _ in range(nx)]

    def run(i: int, j: int, warm: list[np.ndarray], starts: int) -> None:
        info = infos[i][j]
        pres = build_process(name, {x_param: x_values[i], y_param: y_values[j]})
        r = minimal_generator(pres, states, n_starts=starts, warm_starts=warm,
                              seed=seed + i * ny + j,
                              statistical_complexity=info.statistical_complexity,
                              excess_entropy=info.excess_entropy, word_tol=word_tol,
                              target_states=info.n_causal_states)
        old = best[i][j]
        if r.converged and (old is None or r.generative_complexity < old.generative_complexity):
            best[i][j] = r

    def warm(i: int, j: int) -> list[np.ndarray]:
        r = best[i][j]
        return [np.asarray(r.matrices)] if r is not None else []

    for i in range(nx):  # rows, left to right, with random starts
        for j in range(ny):
            run(i, j, warm(i, j - 1) if j else (warm(i - 1, 0) if i else []), n_starts)
    for i in range(nx):  # rows, right to left
        for j in range(ny - 2, -1, -1):
            run(i, j, warm(i, j + 1), 0)
    for j in range(ny):  # columns, both ways
        for i in range(1, nx):
            run(i, j, warm(i - 1, j), 0)
        for i in range(nx - 2, -1, -1):
            run(i, j, warm(i + 1, j), 0)

    def grid(f: Any) -> list[list[float | None]]:
        return [[f(i, j) for j in range(ny)] for i in range(nx)]

    return GeneratorMap(
        process=name, x_param=x_param, y_param=y_param, x_values=[float(v) for v in x_values],
        y_values=[float(v) for v in y_values],
        statistical_complexity=grid(lambda i, j: infos[i][j].statistical_complexity),
        generator_entropy=grid(lambda i, j: None if best[i][j] is None
                               else best[i][j].generative_complexity),
        excess_entropy=grid(lambda i, j: infos[i][j].excess_entropy), states=states,
    )
