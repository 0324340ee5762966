"""MCMC diagnostics for a set of chains: split R-hat and effective sample size.

Both follow Gelman et al., *Bayesian Data Analysis* (3rd ed., section 11.4) and Vehtari et al.
(2021), "Rank-normalization, folding, and localization: an improved R-hat", without the rank
normalization: the draws here are loss values, whose means are what the estimate uses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_rhat", "effective_sample_size", "drift_z"]


def split_rhat(draws: np.ndarray) -> float:
    """Split R-hat of ``draws`` with shape ``(chains, draws)``.

    Each chain is cut in two halves; with ``W`` the mean within-half variance and ``B/n`` the
    variance of the half means, ``R = sqrt(((n - 1)/n W + B/n) / W)``. Values above about 1.01-1.1
    mean the chains have not mixed. Returns ``nan`` with fewer than 4 draws a chain.
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        return float("nan")
    half = x.shape[1] // 2
    parts = np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)  # (2C, half)
    n = parts.shape[1]
    w = parts.var(axis=1, ddof=1).mean()
    b_over_n = parts.mean(axis=1).var(ddof=1)
    if w <= 0:
        return float("nan") if b_over_n > 0 else 1.0
    var_plus = (n - 1) / n * w + b_over_n
    return float(np.sqrt(var_plus / w))


def effective_sample_size(draws: np.ndarray) -> float:
    """Effective sample size of the mean over all chains (Geyer's initial positive sequence).

    ``ESS = C N / (1 + 2 sum_t rho_t)`` with the autocorrelation ``rho_t`` averaged over chains and
    the sum truncated at the first pair ``rho_{2k} + rho_{2k+1}`` that is not positive.
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        return float("nan")
    c, n = x.shape
    xc = x - x.mean(axis=1, keepdims=True)
    var = (xc**2).mean(axis=1)
    if np.all(var <= 0):
        return float(c * n)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(xc, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n  # (C, N)
    rho = (acov / np.where(var > 0, var, 1.0)[:, None]).mean(axis=0)
    tau = -1.0
    for k in range(0, n - 1, 2):
        pair = rho[k] + rho[k + 1]
        if pair <= 0:
            break
        tau += 2.0 * pair
    tau = max(tau, 1.0 / np.log10(max(c * n, 10)))
    return float(c * n / tau)


def drift_z(draws: np.ndarray) -> float:
    """How far the kept draws still drift: a z score of (last third - first third) means.

    Computed on the chain-averaged trace with the standard error from each third's effective size.
    ``|z| > 4`` means the trace is still moving (burn-in too short or step size too small).
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2 or x.shape[1] < 12:
        return float("nan")
    third = x.shape[1] // 3
    a, b = x[:, :third], x[:, -third:]
    ess_a, ess_b = effective_sample_size(a), effective_sample_size(b)
    se = np.sqrt(a.var(ddof=1) / max(ess_a, 1.0) + b.var(ddof=1) / max(ess_b, 1.0))
    if not np.isfinite(se) or se <= 0:
        return 0.0
    return float((b.mean() - a.mean()) / se)
