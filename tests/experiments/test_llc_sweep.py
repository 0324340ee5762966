"""LLC and compression as registered experiments: swept over checkpoints and stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from occamlab.experiments import get_experiment, parse_spec, run_sweep
from occamlab.store import RunStore, load_index

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: Any) -> Path:
    from occamlab.train import ModelConfig, TrainConfig, train

    out = tmp_path_factory.mktemp("tiny")
    cfg = TrainConfig(model=ModelConfig(vocab_size=256, context=16, d_model=8, n_layer=1,
                                        n_head=1),
                      steps=40, batch_size=8, eval_every=20, eval_tokens=256, warmup_steps=4,
                      checkpoint_every=20, threads=1)
    train(cfg, out=out)
    assert (out / "best" / "model.safetensors").exists() and (out / "last").exists()
    return out


def test_a_sweep_of_llc_over_two_checkpoints_stores_both(checkpoints: Path,
                                                         tmp_path: Path) -> None:
    spec = parse_spec({
        "experiment": "llc",
        "base": {"data": "shakespeare", "max_tokens": 2048,
                 "sgld": {"n_chains": 2, "n_draws": 20, "n_burnin": 10, "step_size": 1e-4}},
        "axes": {"checkpoint": [str(checkpoints / "best"), str(checkpoints / "last")]},
    })
    runs = spec.resolve()
    assert len(runs) == 2
    # a nested table updates the experiment's own default sampler (minibatch of 16 windows)
    assert runs[0].config["sgld"]["batch_size"] == 16 and runs[0].config["sgld"]["n_draws"] == 20
    res = run_sweep(runs, tmp_path / "store", jobs=0)
    assert res.n_done == 2 and res.n_failed == 0
    store = RunStore(tmp_path / "store")
    for r in runs:
        rec = store.record(r.id)
        assert rec.status == "done" and rec.result is not None
        assert rec.result["n"] == 2048 and rec.result["nbeta"] > 0
        assert isinstance(rec.result["llc"], float)
        full = json.loads((store.path(r.id) / "llc.json").read_text())
        assert full["result"]["llc"] == rec.result["llc"]
        assert full["checkpoints"] == [r.config["checkpoint"]]
    df = load_index(store, status="done")
    assert set(df["config.checkpoint"]) == {str(checkpoints / "best"), str(checkpoints / "last")}
    assert "llc" in df.columns and df["llc"].notna().all()


def test_compress_runs_as_an_experiment(checkpoints: Path, tmp_path: Path) -> None:
    exp = get_experiment("compress")
    cfg = exp.make_config({"checkpoint": str(checkpoints), "data": "shakespeare",
                           "max_tokens": 2048, "scheme": "rtn-channel", "epsilon": 0.05})
    out = exp.run(cfg, tmp_path)
    assert out.result["scheme"] == "rtn-channel" and out.files == ("compress.json",)
    full = json.loads((tmp_path / "compress.json").read_text())
    assert full["compression"]["n_q"] == out.result["n_q"]
    assert (out.result["total_bits"] is None) == (out.result["n_q"] is None)


def test_bad_configs_name_the_field(checkpoints: Path) -> None:
    from occamlab.errors import ConfigError

    exp = get_experiment("llc")
    with pytest.raises(ConfigError, match="did you mean 'step_size'"):
        exp.make_config({"checkpoint": "x", "data": "shakespeare", "sgld": {"stepsize": 1}})
    with pytest.raises(ConfigError, match="data must name"):
        exp.make_config({"checkpoint": "x"})
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        exp.make_config({"checkpoint": "x", "data": "d", "seed": -1})
    with pytest.raises(ConfigError, match="epsilon"):
        get_experiment("compress").make_config({"checkpoint": "x", "data": "d", "epsilon": 0})
