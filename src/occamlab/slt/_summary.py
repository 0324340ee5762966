"""From the raw chains of :func:`~occamlab.slt._sgld.run_chains` to an estimate and its warnings.

Pure functions of the traces (numpy): :func:`summarise` computes the estimate
``lambda_hat = mean over surviving chains c of mean_t n beta (L_B(w_t^c) - L_B(w*))`` over the
kept draws, its standard error across chains and the diagnostics; :func:`diagnose` turns the
diagnostics into warnings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from occamlab.slt._diagnostics import drift_z, effective_sample_size, split_rhat
from occamlab.slt._sgld import ChainRun

__all__ = ["ChainSummary", "summarise", "diagnose"]

NAN = float("nan")


@dataclass(frozen=True)
class ChainSummary:
    """The estimate and diagnostics of a run, chains that diverged left out (``nan`` where
    undefined)."""

    llc: float
    llc_stderr: float
    llc_per_chain: tuple[float, ...]  # nan for a chain that diverged
    rhat: float
    ess: float
    drift_z: float
    mala_acceptance: float
    temperature: float
    temperature_stderr: float
    n_good: int  # chains that did not diverge
    loss_trace: np.ndarray  # (C, S) L_B(w_t), every step
    kept: np.ndarray  # (C, n_draws) n beta (L_B(w_t) - L_B(w*)) of the kept draws


def _temperature(virial: np.ndarray) -> tuple[float, float]:
    """Configurational temperature ``mean (w - w*) . grad U / d`` over chains and kept steps
    (exactly 1 under the target) and its standard error from the effective sample size."""
    temperature = float(virial.mean()) if virial.size else NAN
    t_se = NAN
    if virial.ndim == 2 and virial.shape[0] > 0 and virial.shape[1] >= 4:
        ess_t = effective_sample_size(virial)
        t_se = float(virial.std() / math.sqrt(max(ess_t, 1.0)))
    return temperature, t_se


def _llc_statistics(good: np.ndarray) -> tuple[float, float, float, float, float]:
    """``(llc, stderr, rhat, ess, drift_z)`` of the surviving chains' kept draws (C', n_draws)."""
    if good.shape[0] == 0:
        return (NAN,) * 5
    means = good.mean(axis=1)
    llc = float(means.mean())
    se = float(means.std(ddof=1) / math.sqrt(good.shape[0])) if good.shape[0] > 1 else NAN
    rhat = split_rhat(good) if good.shape[0] > 1 else NAN
    return llc, se, rhat, effective_sample_size(good), drift_z(good)


def summarise(
    run: ChainRun, *, nbeta: float, n_burnin: int, thin: int, n_draws: int
) -> ChainSummary:
    """The estimate and diagnostics of ``run``: burn-in dropped, every ``thin``-th draw kept.

    ``llc`` is the mean over surviving chains of each chain's mean of
    ``n beta (L_B(w_t) - L_B(w*))``, ``llc_stderr`` the standard deviation of the chain means
    over ``sqrt(chains)``; the MALA acceptance and the temperature are averaged over the
    surviving chains' post-burn-in steps.
    """
    losses = run.loss_trace.numpy()
    excess = nbeta * (losses - run.init_trace.numpy())  # (C, S)
    kept = excess[:, n_burnin::thin][:, :n_draws]  # (C, n_draws)
    ok = np.array([s is None for s in run.diverged_at])
    per_chain = tuple(float(kept[i].mean()) if ok[i] else NAN for i in range(len(ok)))
    acc = run.accept.numpy()[ok, max(n_burnin - 1, 0) :]
    mala = float(np.nanmean(acc)) if acc.size and np.isfinite(acc).any() else NAN
    temperature, t_se = _temperature(run.virial.numpy()[ok, n_burnin:])
    llc, se, rhat, ess, dz = _llc_statistics(kept[ok])
    return ChainSummary(
        llc=llc, llc_stderr=se, llc_per_chain=per_chain, rhat=rhat, ess=ess, drift_z=dz,
        mala_acceptance=mala, temperature=temperature, temperature_stderr=t_se,
        n_good=int(ok.sum()), loss_trace=losses, kept=kept,
    )


def _divergence_note(diverged_at: list[int | None], step_size: float) -> list[str]:
    n_bad = sum(1 for s in diverged_at if s is not None)
    if not n_bad:
        return []
    first = min(s for s in diverged_at if s is not None)
    return [
        f"{n_bad} of {len(diverged_at)} chains diverged (first at step {first}) and were stopped "
        f"and left out; reduce step_size (now {step_size:g})"
    ]


def diagnose(s: ChainSummary, diverged_at: list[int | None], *, step_size: float) -> list[str]:
    """Warnings, in this order: divergences; no surviving chain; a non-finite or negative
    estimate; R-hat > 1.1; drift ``|z| > 4``; a temperature above
    ``1 + max(0.1, 3 se(T))`` (running hot); ESS < 20."""
    notes = _divergence_note(diverged_at, step_size)
    if s.n_good == 0:
        return [*notes, "no chain survived: the estimate is undefined (nan), not infinite"]
    if not math.isfinite(s.llc):
        notes.append("the estimate is not finite")
    elif s.llc < 0:
        notes.append(
            "negative estimate: w* is probably not a local minimum of L_n (chains found lower "
            "loss), or the loss at w* was measured on other data"
        )
    if math.isfinite(s.rhat) and s.rhat > 1.1:
        notes.append(f"R-hat {s.rhat:.3f} > 1.1: chains disagree (mix longer or change step_size)")
    if math.isfinite(s.drift_z) and abs(s.drift_z) > 4:
        notes.append(
            f"the trace still drifts (z = {s.drift_z:.1f} between first and last third of the "
            "draws): lengthen burn-in or check that w* is a minimum"
        )
    t, t_se = s.temperature, s.temperature_stderr
    if math.isfinite(t) and t > 1 + max(0.1, 3 * (t_se if math.isfinite(t_se) else 0)):
        notes.append(
            f"the chains run hot (configurational temperature {t:.2f} > 1): "
            "discretization or minibatch-gradient noise inflates the estimate; reduce "
            "step_size or enlarge batch_size"
        )
    if math.isfinite(s.ess) and s.ess < 20:
        notes.append(f"effective sample size {s.ess:.0f} < 20: the standard error is unreliable")
    return notes
