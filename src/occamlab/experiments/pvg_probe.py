"""The ``pvg-probe`` experiment: prediction, belief states and generation of one trained model.

For a checkpoint trained on a process of :mod:`occamlab.processes` (usually ``run:<id>/best`` of
a ``train`` run on ``process:`` data), on fresh sequences sampled with their exact belief states:

- **prediction**: held-out loss per symbol (nats) against the exact entropy rate and against the
  Bayes-optimal loss with the same context, overall and by position, beside the exact
  ``H(X_{t+1} | X_0..X_t)`` (block-entropy differences);
- **belief states**: ridge probes from each layer's residual stream (and all layers together) to
  the belief state, R^2 on held-out sequences; where beliefs take few values, the probe's
  accuracy at naming the belief;
- **generation**: sequences sampled from the model at temperature 1 and from the process, the
  same number and length; an epsilon-machine inferred from each by CSSR
  (:func:`occamlab.processes.infer`, bootstrap intervals) and their plug-in block entropies;
- **representation** (binary Markov at p = q): k-means clusters of the last layer's residual
  stream beside ``C_mu``, Lohr's generator and the minimal generator.

Writes ``pvg.json`` (a :class:`PVGReport`); the run's result holds the headline numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._config import ConfigBase
from occamlab._io import atomic_write_json
from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, check_seed
from occamlab.processes import InferenceResult

from ._lm import check_lm_fields
from ._pvg_measure import Clusters, Generation, Generators, Prediction, Probes, Truth
from ._registry import RunOutput

__all__ = ["Config", "PVGReport", "measure", "run"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """One model's prediction, probes and generation.

    Parameters
    ----------
    checkpoint : str
        A checkpoint directory, or ``run:<id>/best`` in a store.
    process : str
        The process the model was trained on (``occam process list``), with ``params``.
    n_eval : int
        Held-out sequences (of the context's length) for the loss.
    n_probe_fit, n_probe_test : int
        Sequences to fit the probes on and to score them on (disjoint). ``n_probe_fit`` must be
        at least the number of features of the widest probe (all layers: ``(n_layer + 1) d``).
    gen_sequences, gen_length : int
        Sequences sampled from the model (after a burn-in of one context) and from the process.
    gen_min_context : int
        The fewest symbols each generated symbol conditions on (``generate``'s
        ``min_context``; 0: the whole context, an exact sliding window, slowest).
    max_history, alpha, bootstrap : CSSR's history length, test level and bootstrap resamples.
    max_depth : int
        Depth of the mixed-state search behind ``E`` of the inferred machines (``infer``'s
        ``max_depth``; ``C_mu`` and ``h_mu`` do not depend on it, ``E`` is not reported).
    max_block : int
        Block entropies ``H(L)`` for ``L <= max_block``.
    k_max : int
        Largest k of the k-means of the last layer (binary Markov only; 0: no clusters).
    cluster_points : int
        Positions clustered.
    seed : int
        Seed of the held-out data, the generation, the bootstrap and the clusters.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    """

    checkpoint: str = ""
    process: str = ""
    params: dict[str, float] = field(default_factory=dict)
    n_eval: int = 2000
    n_probe_fit: int = 1000
    n_probe_test: int = 500
    gen_sequences: int = 200
    gen_length: int = 1000
    gen_min_context: int = 0
    max_history: int = 6
    max_depth: int = 8
    alpha: float = 0.001
    bootstrap: int = 20
    max_block: int = 10
    k_max: int = 8
    cluster_points: int = 1500
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_lm_fields(self.checkpoint, "process", 2, self.device)
        check_seed(self.seed)
        if not self.process:
            raise ConfigError("process must name a process of the library (occam process list)")
        for name in ("n_eval", "n_probe_fit", "n_probe_test", "gen_sequences", "gen_length",
                     "max_block", "cluster_points"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ConfigError(f"{name} must be an integer >= 2, got {v!r}")
        if self.bootstrap < 0 or self.k_max < 0 or self.k_max == 1:
            raise ConfigError("bootstrap >= 0 and k_max = 0 (no clusters) or >= 2 are required")
        if self.gen_min_context < 0 or self.max_depth < 1:
            raise ConfigError("gen_min_context >= 0 (0: the whole context) and max_depth >= 1 "
                              "are required")


@dataclass(frozen=True)
class PVGReport(Rendered):
    """Prediction, belief probes and generation of one model of a process (see the module doc).

    Losses in nats per symbol; entropies, ``C_mu`` and ``h_mu`` in bits unless named ``_nats``.
    ``inferred_model`` and ``inferred_process`` are CSSR's machines from the model's samples and
    from the process's own samples of the same shape.
    """

    process: str
    params: dict[str, float]
    checkpoint: str
    model: dict[str, Any]
    n_params: int
    seed: int
    device: str
    truth: Truth
    prediction: Prediction
    probes: Probes
    generation: Generation
    inferred_model: InferenceResult
    inferred_process: InferenceResult
    clusters: Clusters | None = None
    generators: Generators | None = None
    warnings: tuple[str, ...] = ()

    def _tables(self) -> list[Table]:
        t, p, pr = self.truth, self.prediction, self.probes
        head = Table(f"{self.process}: prediction (nats per symbol)", ["quantity", "value", "se"],
                     [["held-out loss", p.loss, p.loss_se],
                      ["loss - h_mu", p.loss - t.entropy_rate_nats, p.loss_se],
                      ["Bayes-optimal loss, same context", p.optimal, p.optimal_se],
                      ["excess over Bayes-optimal (paired)", p.excess, p.excess_se],
                      ["h_mu (exact)", t.entropy_rate_nats, None]],
                     [f"{p.n_sequences} held-out sequences of {len(p.loss_by_position)} "
                      f"predictions; model {self.model}, {self.n_params} parameters"])
        probe = Table("Linear probes to the belief state (held-out R^2)",
                      ["layer", "R^2", "penalty", "features", "accuracy"],
                      [[name, pr.r2[i], pr.penalty[i], pr.n_features[i],
                        pr.accuracy[i] if pr.accuracy else None]
                       for i, name in enumerate(pr.layers)],
                      [f"{pr.n_fit_sequences} fitting, {pr.n_test_sequences} test sequences; "
                       f"{pr.n_belief_values} distinct belief values"
                       + (f"; chance accuracy {pr.chance:.3f}" if pr.chance is not None else "")])
        rows = []
        for label, r in (("model samples", self.inferred_model),
                         ("process samples", self.inferred_process)):
            rows.append([label, r.n_states, r.statistical_complexity,
                         r.statistical_complexity_ci, r.entropy_rate, r.entropy_rate_ci])
        rows.append(["truth", t.n_causal_states, t.statistical_complexity, None,
                     t.entropy_rate, None])
        gen = Table("Epsilon-machines inferred from samples (bits)",
                    ["samples", "states", "C_mu", "interval", "h_mu", "interval"], rows,
                    [f"{self.generation.n_sequences} x {self.generation.length} symbols each; "
                     f"CSSR max_history {self.generation.max_history}"])
        return [head, probe, gen]


def _load(config: Config, run_dir: Path | None) -> tuple[Any, Any, str]:
    import torch

    from occamlab.processes import build_process
    from occamlab.train import load_checkpoint, resolve_device

    from ._refs import resolve_ref

    torch.set_num_threads(1)
    model, mcfg = load_checkpoint(resolve_ref(config.checkpoint, run_dir))
    proc = build_process(config.process, dict(config.params))
    if mcfg.vocab_size != proc.n_symbols:
        raise ConfigError(f"{config.checkpoint}: the model's vocabulary ({mcfg.vocab_size}) is "
                          f"not the alphabet of {config.process} ({proc.n_symbols} symbols)")
    dev = resolve_device(config.device)
    return model.to(dev), proc, str(dev)


def measure(config: Config, *, run_dir: str | Path | None = None) -> PVGReport:
    """Everything the module doc lists, for ``config.checkpoint`` (see :class:`Config`)."""
    import numpy as np

    from occamlab.processes import infer
    from occamlab.train import n_params

    from . import _pvg_measure as M

    model, proc, dev = _load(config, None if run_dir is None else Path(run_dir))
    T = model.config.context
    rng = [np.random.default_rng([config.seed, i]) for i in range(4)]
    truth = M.measure_truth(proc, T, config.max_block)
    pred = M.measure_prediction(model, proc, config.n_eval, rng[0])
    probes = M.measure_probes(model, proc, config.n_probe_fit, config.n_probe_test, rng[1],
                              seed=config.seed)
    gen, xm, xp = M.measure_generation(model, proc, config.gen_sequences, config.gen_length,
                                       config.max_block, config.max_history, rng[2],
                                       min_context=config.gen_min_context or None,
                                       seed=config.seed)
    kw = {"max_history": config.max_history, "alpha": config.alpha,
          "bootstrap": config.bootstrap, "symbols": proc.symbols, "seed": config.seed,
          "max_depth": config.max_depth}
    inf_model = infer(xm, name=f"{config.process} (model samples)", **kw)
    inf_proc = infer(xp, name=f"{config.process} (process samples)", **kw)
    clusters = generators = None
    p = dict(config.params)
    if config.process == "binary-markov" and p.get("p", 0.4) == p.get("q", 0.4):
        generators = M.measure_generators(config.process, p, seed=config.seed)
        if config.k_max:
            clusters = M.measure_clusters(model, proc, config.cluster_points, config.k_max,
                                          rng[3], seed=config.seed)
    return PVGReport(process=config.process, params=p, checkpoint=config.checkpoint,
                     model=model.config.to_dict(), n_params=int(n_params(model.config)),
                     seed=config.seed, device=dev, truth=truth, prediction=pred, probes=probes,
                     generation=gen, inferred_model=inf_model, inferred_process=inf_proc,
                     clusters=clusters, generators=generators)


def summary(report: PVGReport) -> dict[str, Any]:
    """The run's scalars: what the store's index shows."""
    t, p = report.truth, report.prediction
    out: dict[str, Any] = {
        "process": report.process, "loss": p.loss, "loss_se": p.loss_se,
        "gap_h_mu": p.loss - t.entropy_rate_nats, "excess": p.excess, "excess_se": p.excess_se,
        "r2_all_layers": report.probes.r2[-1], "states_model": report.inferred_model.n_states,
        "states_process": report.inferred_process.n_states,
        "c_mu_model": report.inferred_model.statistical_complexity,
        "h_mu_model": report.inferred_model.entropy_rate}
    if report.clusters is not None:
        out["clusters"] = report.clusters.k
    return out


def run(config: Config, run_dir: Path) -> RunOutput:
    report = measure(config, run_dir=run_dir)
    atomic_write_json(Path(run_dir) / "pvg.json", report.to_dict(), indent=None)
    return RunOutput(summary(report), files=("pvg.json",))
