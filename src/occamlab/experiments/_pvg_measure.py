"""What a ``pvg-probe`` run measures on one trained model of one process (see ``pvg_probe``).

- :func:`measure_truth`: the process's exact entropy rate, ``C_mu``, block entropies and the
  conditional entropy by position ``H(X_{t+1} | X_0..X_t) = H(t+2) - H(t+1)``.
- :func:`measure_prediction`: held-out loss per symbol on fresh sequences of the context's length,
  beside the Bayes-optimal loss with the same context, ``-ln Pr(x_{t+1} | eta_t)`` with ``eta_t``
  the exact belief state (a paired difference: the model's excess over the best possible).
- :func:`measure_probes`: linear probes from each layer's residual stream to the belief state.
- :func:`measure_generation`: sequences sampled from the model and from the process, their
  plug-in block entropies (the epsilon-machines are inferred by the caller).
- :func:`measure_clusters`: k-means clusters of the final layer's residual stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab.errors import ConfigError, OccamError

from ._probes import belief_classes, choose_k, classify, fit_probe

__all__ = ["Truth", "Prediction", "Probes", "Generation", "Clusters", "Generators",
           "measure_truth", "measure_prediction", "measure_probes", "measure_generation",
           "measure_clusters", "measure_generators", "plugin_block_entropies"]

LN2 = math.log(2.0)
FEW_VALUES = 64  # beliefs with at most this many distinct values are classified too
SIMPLEX_POINTS = 2000


@dataclass(frozen=True)
class Truth:
    """Exact properties of the process (bits unless named ``_nats``).

    ``conditional_entropy_nats[t] = H(X_{t+1} | X_0..X_t)`` for ``t = 0, 1, ...`` as far as
    the mixed states could be enumerated (the context for a finite mixed-state presentation).
    """

    entropy_rate: float
    entropy_rate_nats: float
    entropy_rate_exact: bool
    statistical_complexity: float | None
    n_causal_states: int | None
    marginal_entropy_nats: float
    block_entropies: tuple[float, ...]
    conditional_entropy_nats: tuple[float, ...]
    state_names: tuple[str, ...]


@dataclass(frozen=True)
class Prediction:
    """Held-out loss (nats per symbol) of the model and of the Bayes-optimal predictor with the
    same context; standard errors over the independent sequences."""

    n_sequences: int
    loss: float
    loss_se: float
    optimal: float
    optimal_se: float
    excess: float
    excess_se: float
    loss_by_position: tuple[float, ...]
    loss_by_position_se: tuple[float, ...]
    optimal_by_position: tuple[float, ...]
    optimal_by_position_se: tuple[float, ...]
    excess_by_position: tuple[float, ...]
    excess_by_position_se: tuple[float, ...]
    excess_first_quarter: float
    excess_first_quarter_se: float
    excess_last_quarter: float
    excess_last_quarter_se: float


@dataclass(frozen=True)
class Probes:
    """Linear probes from the residual stream to the belief state, scored on test sequences."""

    layers: tuple[str, ...]
    r2: tuple[float, ...]
    r2_validation: tuple[float, ...]
    penalty: tuple[float, ...]
    n_features: tuple[int, ...]
    n_fit_sequences: int
    n_test_sequences: int
    n_belief_values: int
    accuracy: tuple[float, ...]
    chance: float | None
    simplex_layer: str
    simplex_true: tuple[tuple[float, ...], ...]
    simplex_predicted: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Generation:
    """Sequences sampled from the model (temperature 1) and from the process, same shape;
    plug-in block entropies ``H(L)`` (bits) of both, ``L = 0 .. max_block``."""

    n_sequences: int
    length: int
    burn_in: int
    min_context: int
    temperature: float
    max_history: int
    block_entropies_model: tuple[float, ...]
    block_entropies_process: tuple[float, ...]


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of one layer's residual stream; ``k`` maximizes the mean silhouette."""

    layer: str
    n_points: int
    k_values: tuple[int, ...]
    silhouette: tuple[float, ...]
    k: int
    entropy: float
    sizes: tuple[int, ...]
    purity: float
    n_belief_values: int
    criterion: str
    pca: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]
    belief_labels: tuple[int, ...]


@dataclass(frozen=True)
class Generators:
    """Prediction against generation for the process (binary Markov at p = q, the seed's post):
    ``C_mu`` of the epsilon-machine, Lohr's 3-state generator and the least-entropy k-state
    generator found, in bits."""

    statistical_complexity: float | None
    causal_states: int | None
    lohr_entropy: float | None
    lohr_states: int
    generator_entropy: float | None
    generator_states: int


# ---- truth -------------------------------------------------------------------------------
def measure_truth(presentation: Any, context: int, max_block: int) -> Truth:
    from occamlab.processes import analyze, block_entropies

    info = analyze(presentation, precision=1e-4)
    H = None
    # finite mixed states: the whole context; infinitely many (Mess3): up to max_block only
    lengths = (max_block,) if info.truncated else (max(context + 1, max_block), max_block)
    for L in dict.fromkeys(lengths):
        try:  # finite mixed-state presentations: the whole context; else as far as affordable
            H = block_entropies(presentation, L, max_states=100_000)
            break
        except ConfigError:
            continue
    if H is None:
        raise OccamError(f"{presentation.name}: block entropies up to L = {max_block} need more "
                         "than 100,000 mixed states")
    cond = np.diff(H)[1:context + 1] * LN2  # h(t+2), t = 0 .. context-1, nats
    return Truth(entropy_rate=float(info.entropy_rate),
                 entropy_rate_nats=float(info.entropy_rate) * LN2,
                 entropy_rate_exact=bool(info.entropy_rate_exact),
                 statistical_complexity=info.statistical_complexity,
                 n_causal_states=None if info.truncated else info.n_causal_states,
                 marginal_entropy_nats=float(H[1]) * LN2,
                 block_entropies=tuple(float(v) for v in H[:max_block + 1]),
                 conditional_entropy_nats=tuple(float(v) for v in cond),
                 state_names=tuple(presentation.states))


# ---- prediction --------------------------------------------------------------------------
def _mean_se(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    n = a.shape[axis]
    return a.mean(axis=axis), a.std(axis=axis, ddof=1) / math.sqrt(n)


def model_nll(model: Any, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``-ln p_model(target | inputs up to t)`` per position, (B, T), in batches."""
    import torch

    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(inputs), 512):
            x = torch.from_numpy(inputs[i:i + 512]).to(device)
            y = torch.from_numpy(targets[i:i + 512]).to(device)
            logp = torch.log_softmax(model(x).double(), dim=-1)  # (b, T, V)
            out.append(-logp.gather(2, y[..., None])[..., 0].cpu().numpy())
    return np.concatenate(out)


def measure_prediction(model: Any, presentation: Any, n_sequences: int,
                       rng: np.random.Generator) -> Prediction:
    from occamlab.processes import sample

    T = model.config.context
    s = sample(presentation, T + 1, batch=n_sequences, rng=rng, beliefs=True)
    x = s.symbols.astype(np.int64)
    inputs, targets = x[:, :T], x[:, 1:]
    nll = model_nll(model, inputs, targets)  # (B, T)
    assert s.beliefs is not None
    emit = presentation.emission_probabilities  # (n_states, V)
    pred = np.einsum("bti,iv->btv", s.beliefs[:, :T].astype(float), emit)  # Pr(x_{t+1} | eta_t)
    opt = -np.log(np.take_along_axis(pred, targets[..., None], axis=2)[..., 0])
    loss, loss_se = _mean_se(nll.mean(axis=1))
    o, o_se = _mean_se(opt.mean(axis=1))
    ex, ex_se = _mean_se((nll - opt).mean(axis=1))
    lp, lp_se = _mean_se(nll)
    op, op_se = _mean_se(opt)
    ep, ep_se = _mean_se(nll - opt)
    q = max(1, T // 4)
    e1, e1_se = _mean_se((nll - opt)[:, :q].mean(axis=1))
    e4, e4_se = _mean_se((nll - opt)[:, -q:].mean(axis=1))
    return Prediction(n_sequences=int(n_sequences), loss=float(loss), loss_se=float(loss_se),
                      optimal=float(o), optimal_se=float(o_se), excess=float(ex),
                      excess_se=float(ex_se), loss_by_position=tuple(map(float, lp)),
                      loss_by_position_se=tuple(map(float, lp_se)),
                      optimal_by_position=tuple(map(float, op)),
                      optimal_by_position_se=tuple(map(float, op_se)),
                      excess_by_position=tuple(map(float, ep)),
                      excess_by_position_se=tuple(map(float, ep_se)),
                      excess_first_quarter=float(e1), excess_first_quarter_se=float(e1_se),
                      excess_last_quarter=float(e4), excess_last_quarter_se=float(e4_se))


# ---- probes ------------------------------------------------------------------------------
def residual_stream(model: Any, inputs: np.ndarray) -> list[np.ndarray]:
    """Each layer's residual stream, ``n_layer + 1`` arrays (B, T, d)."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i in range(0, len(inputs), 512):
            res = model.residuals(torch.from_numpy(inputs[i:i + 512]).to(device))
            parts.append([r.double().cpu().numpy() for r in res])
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def layer_names(n_layer: int) -> list[str]:
    return ["embedding", *[f"block {i}" for i in range(1, n_layer + 1)], "all layers"]


def _probe_data(model: Any, presentation: Any, n: int, rng: np.random.Generator
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """Features per layer (+ all concatenated), (n T, .) rows, and the beliefs (n T, k)."""
    from occamlab.processes import sample

    T = model.config.context
    s = sample(presentation, T, batch=n, rng=rng, beliefs=True)
    assert s.beliefs is not None
    res = residual_stream(model, s.symbols.astype(np.int64))
    feats = [r.reshape(n * T, -1) for r in res]
    feats.append(np.concatenate(feats, axis=1))
    return feats, s.beliefs.reshape(n * T, -1).astype(float)


def measure_probes(model: Any, presentation: Any, n_fit: int, n_test: int,
                   rng: np.random.Generator, *, seed: int = 0) -> Probes:
    """Ridge probes per layer; accuracy of the nearest belief value where beliefs are few."""
    T = model.config.context
    names = layer_names(model.config.n_layer)
    Xf, Yf = _probe_data(model, presentation, n_fit, rng)
    Xt, Yt = _probe_data(model, presentation, n_test, rng)
    groups = np.repeat(np.arange(n_fit), T)
    values, labels = belief_classes(np.concatenate([Yf, Yt]))
    few = len(values) <= FEW_VALUES
    test_labels = labels[len(Yf):]
    fits, acc = [], []
    for name, a, b in zip(names, Xf, Xt, strict=True):
        f = fit_probe(a, Yf, groups, b, Yt, seed=seed, what=name)
        fits.append(f)
        if few:
            acc.append(float((classify(f.predictions, values) == test_labels).mean()))
    chance = float(np.bincount(test_labels).max() / len(test_labels)) if few else None
    best = names[-1]  # all layers: what a linear readout of the whole stream recovers
    pts = np.random.default_rng(seed).choice(len(Yt), size=min(SIMPLEX_POINTS, len(Yt)),
                                             replace=False)
    pts.sort()
    show = Yt.shape[1] == 3  # a 2-simplex can be drawn (Mess3)
    return Probes(
        layers=tuple(names), r2=tuple(f.r2 for f in fits),
        r2_validation=tuple(f.r2_validation for f in fits),
        penalty=tuple(f.penalty for f in fits), n_features=tuple(f.n_features for f in fits),
        n_fit_sequences=int(n_fit), n_test_sequences=int(n_test),
        n_belief_values=int(len(values)), accuracy=tuple(acc), chance=chance,
        simplex_layer=best if show else "",
        simplex_true=tuple(map(tuple, Yt[pts].round(5).tolist())) if show else (),
        simplex_predicted=tuple(map(tuple, fits[-1].predictions[pts].round(5).tolist()))
        if show else ())


# ---- generation --------------------------------------------------------------------------
def plugin_block_entropies(x: np.ndarray, k: int, max_block: int) -> tuple[float, ...]:
    """Plug-in ``H(L)`` (bits) from the counts of every length-``L`` word inside each row."""
    x = np.atleast_2d(np.asarray(x, dtype=np.int64))
    out = [0.0]
    for L in range(1, max_block + 1):
        n = x.shape[1] - L + 1
        codes = np.zeros((x.shape[0], n), dtype=np.int64)
        for j in range(L):
            codes = codes * k + x[:, j:j + n]
        c = np.bincount(codes.ravel(), minlength=1).astype(float)
        p = c[c > 0] / c.sum()
        out.append(float(-(p * np.log2(p)).sum()))
    return tuple(out)


def measure_generation(model: Any, presentation: Any, n_sequences: int, length: int,
                       max_block: int, max_history: int, rng: np.random.Generator, *,
                       min_context: int | None = None,
                       seed: int = 0) -> tuple[Generation, np.ndarray, np.ndarray]:
    """(summary, model samples, process samples): ``n_sequences x length`` each; the model's
    first ``context`` symbols after a uniform start symbol are discarded (burn-in); each of its
    symbols sees at least ``min_context`` before it (default: the whole context)."""
    from occamlab.processes import sample
    from occamlab.train import generate

    burn = model.config.context
    keep = burn if min_context is None else min(min_context, burn)
    gen = generate(model, burn + length, batch=n_sequences, seed=seed,
                   min_context=keep)[:, burn:]
    true = sample(presentation, length, batch=n_sequences, rng=rng).symbols.astype(np.int64)
    k = presentation.n_symbols
    g = Generation(n_sequences=int(n_sequences), length=int(length), burn_in=int(burn),
                   min_context=int(keep), temperature=1.0, max_history=int(max_history),
                   block_entropies_model=plugin_block_entropies(gen, k, max_block),
                   block_entropies_process=plugin_block_entropies(true, k, max_block))
    return g, gen, true


# ---- clusters and generators ---------------------------------------------------------------
def measure_clusters(model: Any, presentation: Any, n_points: int, k_max: int,
                     rng: np.random.Generator, *, seed: int = 0) -> Clusters:
    """k-means of the final layer's residual stream (standardized), k by silhouette."""
    from occamlab.processes import sample

    T = model.config.context
    n_seq = -(-n_points // T)
    s = sample(presentation, T, batch=n_seq, rng=rng, beliefs=True)
    assert s.beliefs is not None
    X = residual_stream(model, s.symbols.astype(np.int64))[-1].reshape(n_seq * T, -1)
    Y = s.beliefs.reshape(n_seq * T, -1)
    keep = np.random.default_rng(seed).choice(len(X), size=min(n_points, len(X)), replace=False)
    keep.sort()
    X, Y = X[keep], Y[keep]
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 1e-12, X.std(axis=0), 1.0)
    k, scores, labels = choose_k(X, k_max, seed=seed)
    _, blabels = belief_classes(Y)
    sizes = np.bincount(labels, minlength=k)
    p = sizes / sizes.sum()
    purity = sum(np.bincount(blabels[labels == j]).max() for j in range(k) if sizes[j]) / len(X)
    _, _, Vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    pca = (X - X.mean(axis=0)) @ Vt[:2].T
    return Clusters(layer=layer_names(model.config.n_layer)[-2], n_points=len(X),
                    k_values=tuple(range(2, k_max + 1)), silhouette=tuple(scores), k=int(k),
                    entropy=float(-(p[p > 0] * np.log2(p[p > 0])).sum()),
                    sizes=tuple(int(v) for v in sizes), purity=float(purity),
                    n_belief_values=int(blabels.max() + 1),
                    criterion="k in 2..k_max with the largest mean silhouette (Rousseeuw 1987) "
                              "of k-means (k-means++ starts) on standardized activations",
                    pca=tuple((round(float(a), 4), round(float(b), 4)) for a, b in pca),
                    labels=tuple(int(v) for v in labels),
                    belief_labels=tuple(int(v) for v in blabels))


def measure_generators(name: str, params: dict[str, float], *, seed: int = 0) -> Generators:
    """``C_mu``, Lohr's generator and the least-entropy 2-state generator at p = q."""
    from occamlab.processes import compare

    p = float(params.get("p", 0.4))
    cmp = compare(name, "p", [p], params={"q": "p"}, states=2, n_starts=2, seed=seed)
    return Generators(statistical_complexity=cmp.statistical_complexity[0], causal_states=2,
                      lohr_entropy=cmp.lohr_entropy[0], lohr_states=3,
                      generator_entropy=cmp.generator_entropy[0], generator_states=cmp.states)
