"""The result contract (ARCHITECTURE.md, convention 5), over every result type of the package.

The result types are found by walking ``occamlab`` and collecting every subclass of the rendering
base, not from a hand list: a new result type without an example below fails
``test_every_result_type_has_an_example``. Each example is a real result of a real (small)
computation, so the values that occur in practice (NaN, None, nested results, tuples) are what is
checked: frozen, JSON round-trip exact (through text, strict JSON), ``__str__`` and
``_repr_html_`` render.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import occamlab
from occamlab._render import Rendered

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")


def _result_types() -> dict[str, type]:
    for m in pkgutil.walk_packages(occamlab.__path__, "occamlab."):
        if m.name.endswith("__main__"):
            continue
        importlib.import_module(m.name)
    found: dict[str, type] = {}
    todo = list(Rendered.__subclasses__())
    while todo:
        c = todo.pop()
        found[f"{c.__module__}.{c.__qualname__}"] = c
        todo.extend(c.__subclasses__())
    return found


# ---- examples: one cheap, real computation per result type ----------------------------------
def _chinchilla_frame() -> pd.DataFrame:
    from occamlab.scaling import Chinchilla

    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e10, 5), 6)
    D = np.tile(np.geomspace(1e8, 1e11, 6), 5)
    L = Chinchilla().predict(truth, N=N, D=D) * np.exp(rng.normal(0, 0.01, len(N)))
    return pd.DataFrame({"N": N, "D": D, "loss": L})


STARTS = [[e, a, b, al, be] for e in (0.0, 0.5) for a in (5.0, 10.0) for b in (5.0, 10.0)
          for al in (0.3, 0.6) for be in (0.3, 0.6)]


def _fit() -> Any:
    from occamlab.scaling import Chinchilla, fit

    return fit(Chinchilla(), _chinchilla_frame(), target="loss", starts=STARTS, bootstrap=8)


def _transfer() -> Any:
    from occamlab.scaling import fit_transfer

    scratch, tuned = [], []
    for N in (1e5, 1e6, 1e7):
        Bn = 300.0 * (N / 1e6) ** -0.1
        for D in np.geomspace(1e5, 1e9, 6):
            scratch.append({"N": N, "D": D, "loss": 1.5 + Bn * D**-0.3})
        for DF in np.geomspace(1e4, 1e6, 4):
            tuned.append({"N": N, "D": DF, "loss": 1.5 + Bn * (DF + 50 * DF**0.4 * N**0.3) ** -0.3})
    return fit_transfer(pd.DataFrame(scratch), pd.DataFrame(tuned))


def _downstream() -> Any:
    from occamlab.scaling import classify_downstream

    rng = np.random.default_rng(1)
    C = np.geomspace(1e17, 1e22, 30)
    z = (np.log(C) - np.log(C).mean()) / np.log(C).std()
    df = pd.DataFrame({"C": C, "smooth": 0.3 + 0.1 * z + rng.normal(0, 0.005, 30),
                       "noise": 0.5 + rng.normal(0, 0.02, 30)})
    return classify_downstream(df, x="C", metrics=["smooth", "noise"])


def _isoflop() -> Any:
    from occamlab.scaling import fit_isoflop, load_dataset

    p = load_dataset("porian2024")
    tuned = p[(p.dataset == "rw") & (p.hparams == "tuned") & (p.warmup == "short")
              & (p.param_count == "standard")]
    return fit_isoflop(tuned, n="n", flops="flops", bootstrap=20)


def _loss_to_loss() -> Any:
    from occamlab.scaling import fit_loss_to_loss

    data = _chinchilla_frame()
    data["y"] = 2.2 + 1.3 * (data["loss"] - 1.69)
    return fit_loss_to_loss(data, x="loss", y="y", starts=STARTS)


def _extrapolation() -> Any:
    from occamlab.scaling import Chinchilla, extrapolation_check

    return extrapolation_check(Chinchilla(), _chinchilla_frame(), by="N", n_holdout=2,
                               starts=STARTS)


def _calibrated() -> Any:
    from occamlab.scaling import PowerLaw, calibrate_extrapolation

    x = np.repeat(np.geomspace(1e6, 1e10, 9), 2)
    u = np.log(x / 1e6)
    return calibrate_extrapolation(PowerLaw(), {"x": x, "loss": 2.0 + 40.0 * np.exp(-(0.3 - 0.005 * u) * u)},
                                   by="x", forms=[PowerLaw(saturating=False)], n_cutoffs=3)


def _chinchilla_report() -> Any:
    from occamlab.scaling import fit_chinchilla

    return fit_chinchilla(_chinchilla_frame(), d="D", bootstrap=4, holdout=1, budgets=[1e21])


def _allocation() -> Any:
    from occamlab.scaling import optimal_allocation

    return optimal_allocation(_fit(), [1e20, 1e22])


def _linreg() -> Any:
    from occamlab.slt import make_linear_regression

    return make_linear_regression(3, 2, n=500, seed=0)


def _sgld() -> Any:
    from occamlab.slt import SGLDConfig

    return SGLDConfig(step_size=3e-3, gamma=10.0, n_chains=2, n_draws=40, n_burnin=20)


def _llc() -> Any:
    from occamlab.slt import estimate_llc

    km = _linreg()
    return estimate_llc(km.model, km.loss_fn, km.data, _sgld(), seed=0)


def _trajectory() -> Any:
    from occamlab.slt import estimate_llc_trajectory

    km = _linreg()
    return estimate_llc_trajectory([km.model, km.model], km.loss_fn, km.data, _sgld(), seed=0)


def _calibration() -> Any:
    from occamlab.slt import CalibrationConfig, SGLDConfig, calibrate_sgld

    km = _linreg()
    cal = CalibrationConfig(step_sizes=(0.01, 0.003), pilot_draws=40, pilot_burnin=40)
    return calibrate_sgld(km.model, km.loss_fn, km.data, SGLDConfig(gamma=1.0), calibration=cal,
                          seed=0)


def _validation() -> Any:
    from occamlab.slt import CalibrationConfig, SGLDConfig, validate_llc

    cheap = CalibrationConfig(step_sizes=(1e-3, 3e-4), pilot_draws=20, pilot_burnin=20,
                              target_rse=None, max_pilot_factor=1)
    return validate_llc(["regular/linreg-5x4"], seed=0, calibration=cheap,
                        config=SGLDConfig(n_chains=2, n_draws=40, n_burnin=40))


def _compression() -> Any:
    from occamlab.slt import critical_compression

    km = _linreg()
    return critical_compression(km.model, km.loss_fn, km.data, scheme="rtn-channel", epsilon=0.01)


def _two_part() -> Any:
    from occamlab.slt import two_part_code_length

    km = _linreg()
    return two_part_code_length(km.model, km.loss_fn, km.data, scheme="svd", level=1)


def _volume_law() -> Any:
    pytest.importorskip("dynesty")
    from occamlab.slt import measure_volume, volume_case

    c = volume_case("regular/linreg-2x1")
    return measure_volume(c.k, c.n_params, eps_min=1e-6, fit_range=(1e-5, 1e-3), n_live=10,
                          n_replicates=10, truth=c.truth, seed=0)


def _learning_coefficient() -> Any:
    from occamlab.slt import rrr_lambda

    return rrr_lambda(4, 3, 4, 1)


def _train() -> Any:
    from occamlab.train import ModelConfig, TrainConfig, train

    tokens = np.random.default_rng(0).integers(0, 3, 4000)
    cfg = TrainConfig(model=ModelConfig(vocab_size=3, context=8, d_model=8, n_layer=1, n_head=2),
                      steps=6, batch_size=4, eval_every=3, eval_tokens=64, warmup_steps=1,
                      threads=1)
    return train(cfg, tokens=tokens)[1]


def _sweep(tmp_path: Any) -> Any:
    from occamlab.experiments import parse_spec, run_sweep

    spec = parse_spec({"experiment": "noop", "axes": {"x": [1.0, 2.0]}})
    return run_sweep(spec.resolve(), tmp_path / "store", jobs=0)


def _store(tmp_path: Any) -> Any:
    from occamlab.store import RunStore

    if not (tmp_path / "store").exists():
        _sweep(tmp_path)
    return RunStore(tmp_path / "store")


def _token_plan() -> Any:
    from occamlab.experiments import load_prices, parse_spec, sweep_plan

    spec = parse_spec({"experiment": "lora-finetune",
                       "base": {"base_model": "meta-llama/Llama-3.2-1B",
                                "training_backend": "tinker", "data": "shakespeare"},
                       "axes": {"lora_rank": [1, 4]}})
    prices = load_prices({"models": {"*": {"train": 0.5, "evaluate": 0.1}}})
    return sweep_plan("lora-finetune", spec.resolve(), prices)


def _ledger() -> Any:
    from occamlab.experiments import ledger_summary, load_prices
    from occamlab.store import RunRecord

    runs = [RunRecord(id=f"r{i}", experiment="lora-finetune", status="done", error=None,
                      config={}, env=None, result={"base_model": m, "tokens_trained": 1000 * i,
                                                   "tokens_sampled": 0, "tokens_evaluated": 512})
            for i, m in enumerate(["a", "b"])]
    return ledger_summary(runs, load_prices({"models": {"a": {"train": 2.0}}}))


def _checkpoint(request: Any) -> Path:
    """A tiny trained checkpoint, made once per session."""
    from occamlab.train import ModelConfig, TrainConfig, train

    root = request.getfixturevalue("tmp_path_factory").getbasetemp() / "contract-ckpt"
    if not (root / "best" / "model.safetensors").exists():
        cfg = TrainConfig(model=ModelConfig(vocab_size=256, context=16, d_model=8, n_layer=1,
                                            n_head=1),
                          steps=20, batch_size=8, eval_every=10, eval_tokens=256, warmup_steps=2,
                          threads=1)
        train(cfg, out=root)
    return root


def _llc_report(request: Any) -> Any:
    from occamlab.experiments.llc import Config, estimate

    return estimate(Config.from_dict({
        "checkpoint": str(_checkpoint(request)), "data": "shakespeare", "max_tokens": 1024,
        "sgld": {"n_chains": 2, "n_draws": 10, "n_burnin": 5, "step_size": 1e-4}}))


def _compression_report(request: Any) -> Any:
    from occamlab.experiments.compress import Config, measure

    return measure(Config(checkpoint=str(_checkpoint(request)), data="shakespeare",
                          max_tokens=1024, epsilon=0.05))


def _pvg_report(tmp_path: Any) -> Any:
    """pvg-probe's measurements of an untrained model of the binary Markov process."""
    from occamlab.experiments.pvg_probe import Config, measure
    from occamlab.train import ModelConfig, Transformer, save_checkpoint

    m = Transformer(ModelConfig(vocab_size=2, context=8, d_model=4, n_layer=1, n_head=1))
    save_checkpoint(tmp_path / "ckpt", m)
    return measure(Config(checkpoint=str(tmp_path / "ckpt"), process="binary-markov",
                          params={"p": 0.4, "q": 0.4}, n_eval=50, n_probe_fit=20,
                          n_probe_test=10, gen_sequences=10, gen_length=300, max_history=3,
                          bootstrap=2, k_max=3, cluster_points=100))


def _demo_result(request: Any) -> Any:
    return request.getfixturevalue("tiny_demo")[1]


def _processes(kind: str) -> Callable[..., Any]:
    def make(tmp_path: Any) -> Any:
        from occamlab import processes as P

        if kind == "info":
            return P.analyze(P.build_process("even"), block_length=3)
        if kind == "list":
            return P.list_processes()
        if kind == "file":
            s = P.sample(P.build_process("mess3"), 20, batch=3, beliefs=True, seed=1)
            return P.save_samples(s, tmp_path / "s.npz")
        if kind == "generator":
            return P.minimal_generator(P.build_process("binary-markov"), 2, n_starts=1)
        if kind == "compare":
            return P.compare("binary-markov", "p", [0.4], params={"q": "p"}, n_starts=0)
        if kind == "map":
            return P.generator_map("binary-markov", "p", [0.3], "q", [0.4], n_starts=0)
        if kind == "infer":
            s = P.sample(P.build_process("golden-mean"), 5000, seed=1)
            return P.infer(s, max_history=3, bootstrap=3)
        return P.estimate_entropy_rate(P.build_process("sns"), n_steps=300, length=4)

    return make


EXAMPLES: dict[str, Callable[..., Any]] = {
    "occamlab.scaling._result.FitResult": _fit,
    "occamlab.scaling._result.Prediction": lambda: _fit().predict(N=[1e9], D=[2e10]),
    "occamlab.scaling._allocation.Allocation": _allocation,
    "occamlab.scaling._chinchilla.ChinchillaReport": _chinchilla_report,
    "occamlab.scaling._transfer.TransferResult": _transfer,
    "occamlab.scaling._downstream.DownstreamResult": _downstream,
    "occamlab.scaling._isoflop.IsoflopResult": _isoflop,
    "occamlab.scaling._loss_to_loss.LossToLossResult": _loss_to_loss,
    "occamlab.scaling._extrapolate.ExtrapolationResult": _extrapolation,
    "occamlab.scaling._calibrate.CalibratedExtrapolation": _calibrated,
    "occamlab.slt._llc.LLCResult": _llc,
    "occamlab.slt._sequence.LLCTrajectory": _trajectory,
    "occamlab.slt._calibrate.CalibrationResult": _calibration,
    "occamlab.slt._validate.ValidationResult": _validation,
    "occamlab.slt._compress.CompressionResult": _compression,
    "occamlab.slt._compress.TwoPartCode": _two_part,
    "occamlab.slt._known.LearningCoefficient": _learning_coefficient,
    "occamlab.slt._volume.VolumeLaw": _volume_law,
    "occamlab.train._result.TrainResult": _train,
    "occamlab.train._corpora.CorpusList": lambda: __import__("occamlab.train").train.list_corpora(),
    "occamlab.experiments._sweep.SweepResult": _sweep,
    "occamlab.experiments._lora_plan.SweepPlan": _token_plan,
    "occamlab.experiments._ledger.LedgerSummary": _ledger,
    "occamlab.experiments._suite.DemoResult": _demo_result,
    "occamlab.experiments.llc.LLCReport": _llc_report,
    "occamlab.experiments.compress.CompressionReport": _compression_report,
    "occamlab.experiments.pvg_probe.PVGReport": _pvg_report,
    "occamlab.store._records.RunRecord": lambda tmp_path: _store(tmp_path).record(
        _store(tmp_path).ids()[0]),
    "occamlab.store._records.RunList": lambda tmp_path: _store(tmp_path).run_list(),
    "occamlab.processes._info.ProcessInfo": _processes("info"),
    "occamlab.processes._generators.GeneratorResult": _processes("generator"),
    "occamlab.processes._compare.CompareResult": _processes("compare"),
    "occamlab.processes._generator_map.GeneratorMap": _processes("map"),
    "occamlab.processes._entropy_rate.EntropyRateEstimate": _processes("entropy"),
    "occamlab.processes._library.ProcessList": _processes("list"),
    "occamlab.processes._sampling.SampleFile": _processes("file"),
    "occamlab.processes._infer.InferenceResult": _processes("infer"),
}

TYPES = _result_types()


def test_every_result_type_has_an_example() -> None:
    missing = sorted(set(TYPES) - set(EXAMPLES))
    assert not missing, f"result types without an example in tests/test_result_contract.py: {missing}"
    stale = sorted(set(EXAMPLES) - set(TYPES))
    assert not stale, f"examples of types that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_result_contract(name: str, tmp_path: Any, result_contract: Any, request: Any) -> None:
    make = EXAMPLES[name]
    given = {"tmp_path": tmp_path, "request": request}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = make(**{k: given[k] for k in inspect.signature(make).parameters})
    assert type(obj) is TYPES[name]
    result_contract(obj)
    # the JSON keys are the dataclass fields: the schema does not change with the values
    keys = {f.name for f in dataclasses.fields(obj) if f.metadata.get("json", True)}
    assert set(obj.to_dict()) == keys
    json.dumps(obj.to_dict(), allow_nan=False)
