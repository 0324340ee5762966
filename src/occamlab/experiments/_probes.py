"""Linear probes from a residual stream to belief states, and k-means clusters of the stream.

A probe is ridge regression ``Y ~ X W + b`` (``X``: activations, one row per position;
``Y``: the exact belief state there). Features are standardized with the fitting set's moments;
the penalty is chosen from a grid on a validation split *by sequence* (positions of one sequence
are correlated, so they stay together), the probe is refitted on every fitting sequence and
scored on separate test sequences by

    R^2 = 1 - sum ||y - y_hat||^2 / sum ||y - mean(y)||^2

(the multivariate coefficient of determination, sums over positions and belief coordinates; the
mean is the test set's). Where beliefs take few values, the probe also classifies: each
prediction goes to the nearest belief value seen, against the share of the most frequent value
(chance). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occamlab.errors import ConfigError, DataError, check_seed

__all__ = ["ProbeFit", "fit_probe", "belief_classes", "kmeans", "choose_k", "LAMBDAS"]

# ridge penalties per row, on standardized features
LAMBDAS: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass(frozen=True)
class ProbeFit:
    """A fitted probe scored on test sequences."""

    r2: float
    penalty: float
    r2_validation: float
    predictions: np.ndarray  # (n_test_rows, k)
    n_features: int


def _check(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, what: str) -> None:
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or len(groups) != len(X):
        raise DataError(f"probe {what}: features (n, d), beliefs (n, k) and sequence ids (n,) "
                        f"must agree, got {X.shape}, {Y.shape}, {groups.shape}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise DataError(f"probe {what}: features or beliefs are not finite")


def _r2(Y: np.ndarray, P: np.ndarray) -> float:
    sst = float(((Y - Y.mean(axis=0)) ** 2).sum())
    sse = float(((Y - P) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else -np.inf)


class _Ridge:
    """Ridge solutions for many penalties from one eigendecomposition of ``X'X``."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.x_mean, self.y_mean = X.mean(axis=0), Y.mean(axis=0)
        Xc = X - self.x_mean
        self.n = len(X)
        s, self.V = np.linalg.eigh(Xc.T @ Xc)
        self.s = np.clip(s, 0.0, None)
        self.VtXY = self.V.T @ (Xc.T @ (Y - self.y_mean))

    def predict(self, X: np.ndarray, penalty: float) -> np.ndarray:
        W = self.V @ (self.VtXY / (self.s + penalty * self.n)[:, None])
        return (X - self.x_mean) @ W + self.y_mean  # type: ignore[no-any-return]


def fit_probe(X_fit: np.ndarray, Y_fit: np.ndarray, groups: np.ndarray, X_test: np.ndarray,
              Y_test: np.ndarray, *, lambdas: tuple[float, ...] = LAMBDAS, seed: int = 0,
              what: str = "") -> ProbeFit:
    """Ridge probe ``X -> Y`` (see the module doc): penalty by validation, R^2 on the test rows.

    Parameters
    ----------
    X_fit, Y_fit : (n, d), (n, k) arrays
        Fitting rows: activations and beliefs.
    groups : (n,) array
        The sequence of each fitting row (the validation split keeps sequences whole).
    X_test, Y_test : (m, d), (m, k) arrays
        Test rows, from other sequences.
    lambdas : tuple of float
        Penalties tried (per row, on standardized features).
    seed : int
        Seed of the validation split.
    what : str
        Named in messages (e.g. the layer).

    Raises
    ------
    DataError
        Fewer fitting sequences than features (the probe could fit each sequence's noise), or
        inconsistent or non-finite arrays.
    """
    X_fit, Y_fit = np.asarray(X_fit, float), np.asarray(Y_fit, float)
    X_test, Y_test = np.asarray(X_test, float), np.asarray(Y_test, float)
    groups = np.asarray(groups)
    _check(X_fit, Y_fit, groups, what)
    ids = np.unique(groups)
    d = X_fit.shape[1]
    if len(ids) < d:
        raise DataError(f"probe {what}: {len(ids)} fitting sequences for {d} features; a linear "
                        f"probe needs at least as many sequences as features (raise n_probe_fit "
                        f"to {d} or more)")
    if not lambdas or min(lambdas) < 0:
        raise ConfigError(f"lambdas must be non-negative penalties, got {lambdas!r}")
    mu, sd = X_fit.mean(axis=0), X_fit.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    Z, Zt = (X_fit - mu) / sd, (X_test - mu) / sd
    rng = np.random.default_rng(check_seed(seed))
    val_ids = rng.choice(ids, size=max(1, len(ids) // 5), replace=False)
    val = np.isin(groups, val_ids)
    inner = _Ridge(Z[~val], Y_fit[~val])
    scores = [_r2(Y_fit[val], inner.predict(Z[val], lam)) for lam in lambdas]
    best = int(np.argmax(scores))
    full = _Ridge(Z, Y_fit)
    pred = full.predict(Zt, lambdas[best])
    return ProbeFit(r2=_r2(Y_test, pred), penalty=float(lambdas[best]),
                    r2_validation=float(scores[best]), predictions=pred, n_features=d)


def belief_classes(beliefs: np.ndarray, *, decimals: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The distinct belief values (rounded to ``decimals``) and each row's index among them."""
    rounded = np.round(np.asarray(beliefs, float), decimals) + 0.0  # -0.0 -> 0.0
    values, labels = np.unique(rounded, axis=0, return_inverse=True)
    return values, labels.reshape(-1)


def classify(predictions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest belief value (Euclidean) for each predicted belief."""
    d = ((predictions[:, None, :] - values[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1)  # type: ignore[no-any-return]


def _sq_dist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, k) by ``|x|^2 - 2 x.c + |c|^2`` (no (n, k, d) array)."""
    d = (X * X).sum(axis=1)[:, None] - 2 * X @ C.T + (C * C).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)  # type: ignore[no-any-return]


def kmeans(X: np.ndarray, k: int, *, seed: int = 0, n_init: int = 4,
           max_iter: int = 100) -> tuple[np.ndarray, float]:
    """Lloyd's k-means with k-means++ starts: (labels, within-cluster sum of squares)."""
    rng = np.random.default_rng(check_seed(seed))
    n = len(X)
    if not 1 <= k <= n:
        raise ConfigError(f"k must lie in [1, {n}] (the number of points), got {k}")
    best: tuple[np.ndarray, float] | None = None
    for _ in range(n_init):
        C = X[[rng.integers(n)]]
        for _ in range(k - 1):  # k-means++: far points are likelier starts
            d2 = _sq_dist(X, C).min(axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1 / n)
            C = np.concatenate([C, X[[rng.choice(n, p=p)]]])
        for _ in range(max_iter):
            labels = np.argmin(_sq_dist(X, C), axis=1)
            new = np.array([X[labels == j].mean(axis=0) if (labels == j).any() else C[j]
                            for j in range(k)])
            if np.allclose(new, C):
                break
            C = new
        inertia = float(((X - C[labels]) ** 2).sum())
        if best is None or inertia < best[1]:
            best = (labels, inertia)
    assert best is not None
    return best


def silhouette(X: np.ndarray, labels: np.ndarray, *, distances: np.ndarray | None = None
               ) -> float:
    """Mean silhouette ``(b - a) / max(a, b)`` (Rousseeuw 1987); 0 for one cluster.

    ``distances``: the (n, n) Euclidean distances of ``X`` when already computed.
    """
    ks = np.unique(labels)
    if len(ks) < 2:
        return 0.0
    D = np.sqrt(_sq_dist(X, X)) if distances is None else distances
    mean_to = np.stack([D[:, labels == k].mean(axis=1) for k in ks], axis=1)  # (n, K)
    own = np.searchsorted(ks, labels)
    sizes = np.array([(labels == k).sum() for k in ks])
    a = mean_to[np.arange(len(X)), own] * sizes[own] / np.maximum(sizes[own] - 1, 1)
    other = mean_to.copy()
    other[np.arange(len(X)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(sizes[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def choose_k(X: np.ndarray, k_max: int, *, seed: int = 0) -> tuple[int, list[float], np.ndarray]:
    """The k in ``2 .. k_max`` with the largest mean silhouette: (k, silhouettes, labels)."""
    if k_max < 2:
        raise ConfigError(f"k_max must be >= 2, got {k_max}")
    D = np.sqrt(_sq_dist(X, X))
    np.fill_diagonal(D, 0.0)
    scores: list[float] = []
    fits: list[np.ndarray] = []
    for k in range(2, k_max + 1):
        labels, _ = kmeans(X, k, seed=seed)
        fits.append(labels)
        scores.append(silhouette(X, labels, distances=D))
    i = int(np.argmax(scores))
    return i + 2, scores, fits[i]
