"""Shared fixtures. ``result_contract`` checks the convention every result type follows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest


def check_result_contract(obj: Any) -> None:
    """Frozen, JSON round-trip through ``to_dict``/``from_dict``, renders as text and HTML."""
    assert dataclasses.is_dataclass(obj), f"{type(obj).__name__} is not a dataclass"
    first = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, first, None)
    d = obj.to_dict()
    text = json.dumps(d, allow_nan=False)  # plain JSON types only, no NaN
    back = type(obj).from_dict(json.loads(text))
    assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(d, sort_keys=True)
    s = str(obj)
    assert isinstance(s, str) and len(s.strip()) > 0
    h = obj._repr_html_()
    assert "<table" in h


@pytest.fixture
def result_contract() -> Callable[[Any], None]:
    return check_result_contract


def _tiny_configs() -> dict[str, Any]:
    """The demo suite at a size for tests: every experiment, seconds of training each."""
    import sysconfig
    from pathlib import Path

    from occamlab.experiments.chinchilla import Config as Chinchilla
    from occamlab.experiments.mdl_slt import Config as MdlSlt
    from occamlab.experiments.prediction_generation import Config as PredictionGeneration
    from occamlab.experiments.published import Config as Published
    from occamlab.experiments.transfer import Config as Transfer
    from occamlab.experiments.transfer import ProcessFamily
    from occamlab.slt import CalibrationConfig, SGLDConfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])  # small corpora found on every machine

    return {
        "chinchilla": Chinchilla(models=((8, 1, 1), (16, 1, 2), (16, 2, 2)),
                                 budgets=(3e8, 1e9, 3e9), process_budgets=(3e8, 1e9, 3e9),
                                 min_steps=20, max_tokens=200_000,
                                 batch_size=8, bootstrap=20),
        "published": Published(bootstrap=10, grid=3, line=4, n_starts=0),
        "mdl-slt": MdlSlt(
            models=((8, 1, 1),), steps=40, snapshots=(20, 40), trajectory=(10, 20, 40),
            context=16, batch_size=8, max_tokens=1024, epsilons=(0.05,),
            sgld=SGLDConfig(step_size=1e-2, batch_size=8, n_chains=2, n_draws=20, n_burnin=20),
            calibration=CalibrationConfig(pilot_draws=10, pilot_burnin=10, max_pilot_factor=1),
            sensitivity_nbeta=(1.0,), sensitivity_steps=(1e-2,),
            volume_cases=("regular/linreg-2x1", "normal_crossing/w1 w2^2"),
            volume_sgld=SGLDConfig(n_chains=2, n_draws=50, n_burnin=50),
            volume_calibration=CalibrationConfig(pilot_draws=20, pilot_burnin=20,
                                                 max_pilot_factor=1),
            n_live=20, n_replicates=10, bootstrap=10),
        "prediction-generation": PredictionGeneration(
            tokens=(20_000,) * 4, models=((8, 1, 2),), context=8, batch_size=16, n_eval=100,
            n_probe_fit=40, n_probe_test=20, gen_sequences=20, gen_length=200, bootstrap=2,
            k_max=3),
        "transfer": Transfer(models=((8, 1, 1), (16, 1, 2)), target=str(stdlib / "json"),
                             sources=("shakespeare", str(stdlib / "LICENSE.txt")),
                             scratch_sizes=(64, 128, 256, 512), finetune_sizes=(64, 256),
                             pretrain_tokens=4096, pretrain_steps=20, max_steps=30, patience=2,
                             val_tokens=512, batch_size=8, chunk=128, lora_models=((16, 1, 2),),
                             lora_ranks=(1,), bootstrap=10,
                             process=ProcessFamily(symbols=4, shifts=(0.5, 1.0),
                                                   models=((8, 1, 1),),
                                                   scratch_sizes=(64, 128, 256, 512),
                                                   finetune_sizes=(64, 128, 256, 512),
                                                   pretrain_tokens=4096, pretrain_steps=20)),
    }


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``occam demo`` of every suite experiment at the tiny size, run once per test session:
    (output folder, DemoResult). The page and its store are the fixture of the page tests."""
    import warnings

    from occamlab.experiments import run_demo

    out = tmp_path_factory.mktemp("demo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_demo(out=out, jobs=0, configs=_tiny_configs())
    return out, res


@pytest.fixture(scope="session")
def tiny_configs() -> dict[str, Any]:
    return _tiny_configs()
