from __future__ import annotations

import itertools

import numpy as np

from occamlab.scaling import Chinchilla

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# a small grid of internal starts (e, a, b, alpha, beta) for tests that are not about the grid
SMALL_GRID = [list(s) for s in itertools.product([0.0, 0.5], [5.0, 10.0], [5.0, 10.0], [0.3, 0.6], [0.3, 0.6])]


def chinchilla_data(seed: int, n: int = 120, noise: float = 0.01, truth: dict | None = None) -> dict:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), n))
    L = Chinchilla().predict(truth or TRUTH, N=N, D=D) * np.exp(rng.normal(0, noise, n))
    return {"N": N, "D": D, "loss": L}


