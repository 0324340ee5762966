"""The ``process-map`` experiment: prediction against generation over a process's parameters.

For the binary Markov process (the seed's second post) at every point of a ``(p, q)`` grid: the
statistical complexity ``C_mu`` (the predictive model's memory), the least state entropy of a
``k``-state generator found by :func:`occamlab.processes.generator_map`, and the excess entropy;
and along the line ``p = q`` Lohr's 3-state generator beside them (:func:`compare`), whose entropy
falls below ``C_mu = 1`` bit above ``p = 0.3865``. Writes ``map.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, check_seed

from ._registry import RunOutput

__all__ = ["Config", "run"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """The grid (``grid`` values of p and of q, from ``low`` to ``high``), the line (``line``
    values of p = q), the generator size and the search's random starts."""

    process: str = "binary-markov"
    grid: int = 9
    line: int = 25
    low: float = 0.05
    high: float = 0.95
    states: int = 2
    n_starts: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.grid < 2 or self.line < 2 or not 0 < self.low < self.high < 1:
            raise ConfigError("process-map needs grid >= 2, line >= 2 and 0 < low < high < 1")
        if self.states < 1 or self.n_starts < 0:
            raise ConfigError("states >= 1 and n_starts >= 0 are required")


def run(config: Config, run_dir: Path) -> RunOutput:
    import numpy as np

    from occamlab.processes import compare, generator_map, lohr_crossover

    vals = [float(f"{v:.4g}") for v in np.linspace(config.low, config.high, config.grid)]
    gmap = generator_map(config.process, "p", vals, "q", vals, states=config.states,
                         n_starts=config.n_starts, seed=config.seed)
    # p = q = 0.4 is the seed's example: always on the line
    line = sorted({float(f"{v:.4g}") for v in np.linspace(0.02, 0.49, config.line)} | {0.4})
    cmp = compare(config.process, "p", line, params={"q": "p"}, states=config.states,
                  n_starts=config.n_starts, seed=config.seed)
    atomic_write_json(Path(run_dir) / "map.json", {"map": gmap.to_dict(), "line": cmp.to_dict()},
                      indent=None)
    gain = gmap.gain()
    return RunOutput({"lohr_crossover": lohr_crossover(),
                      "points_generator_beats_cmu": int(np.nansum(gain > 1e-6)),
                      "grid_points": int(gain.size)}, files=("map.json",))
