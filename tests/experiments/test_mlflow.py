"""``--mlflow``: each finished run of a sweep logged to MLflow (config as params, the metrics
stream, the result, the status), once; a clear error when MLflow is missing.

MLflow is an optional extra (``occamlab[mlflow]``), not in the ``test`` extra: creating its SQLite
tracking database alone takes several seconds, so the tests that need it skip without it.
"""

from __future__ import annotations

import json
import sys

import pytest

from occamlab.cli import main
from occamlab.experiments import parse_spec, run_sweep
from occamlab.store import RunStore

# MLflow's SQLite store (SQLAlchemy 2.1) warns that MLflow uses a deprecated loader strategy:
# MLflow's code, not ours; only that message is ignored.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

TRAIN = {"batch_size": 4, "eval_every": 3, "eval_tokens": 256, "warmup_steps": 2, "threads": 1,
         "steps": 6, "model": {"context": 16, "d_model": 8, "n_layer": 1, "n_head": 2},
         "data": {"corpus": "shakespeare", "max_bytes": 100000}}


def _mlflow():
    return pytest.importorskip("mlflow", reason="MLflow is optional: pip install "
                               "'occamlab[mlflow]' to test --mlflow")


def test_finished_runs_are_logged_once_with_params_metrics_and_result(tmp_path) -> None:
    _mlflow()
    from occamlab.experiments import MlflowLogger

    store = RunStore(tmp_path / "s")
    logger = MlflowLogger(store)
    train = parse_spec({"experiment": "train", "base": TRAIN}).resolve()
    noop = parse_spec({"experiment": "noop", "axes": {"fail": ["", "boom"]}}).resolve()
    assert run_sweep(train, store, jobs=0, on_outcome=logger).n_done == 1
    assert run_sweep(noop, store, jobs=0, on_outcome=logger).n_failed == 1
    assert logger.errors == [] and len(logger.logged) == 3
    client = logger.client
    exp = client.get_experiment_by_name("occam:train")
    if logger.uri.startswith("sqlite:"):  # artifacts beside the database, not in ./mlruns
        assert exp.artifact_location.endswith(str(store.root.resolve() / "mlflow-artifacts"))
    (run,) = client.search_runs([exp.experiment_id])
    rid = train[0].id
    rec = store.read(rid)
    assert run.data.tags["occam.run_id"] == rid and run.info.status == "FINISHED"
    assert run.data.params["steps"] == "6" and run.data.params["model.d_model"] == "8"
    assert run.data.params["data.corpus"] == "shakespeare"
    assert run.data.metrics["best_val_loss"] == rec["result"]["best_val_loss"]
    assert run.data.metrics["tokens_seen"] == 6 * 4 * 16
    lines = [json.loads(x) for x in (store.path(rid) / "metrics.jsonl").read_text().splitlines()]
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(x["step"], x["loss"]) for x in lines
                                                     if "loss" in x]
    assert len(history) >= 6
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"result.json", "env.json"} <= arts
    noop_runs = client.search_runs([client.get_experiment_by_name("occam:noop").experiment_id])
    status = {r.data.tags["occam.run_id"]: r.info.status for r in noop_runs}
    assert status == {noop[0].id: "FINISHED", noop[1].id: "FAILED"}
    failed = next(r for r in noop_runs if r.info.status == "FAILED")
    assert failed.data.tags["occam.error"] == "RuntimeError: boom"
    # resumed (already done: skipped) runs are not logged again; a new logger finds them logged
    again = MlflowLogger(store)
    assert run_sweep(train, store, jobs=0, on_outcome=again).n_skipped == 1
    assert again.logged == [] and len(client.search_runs([exp.experiment_id])) == 1


def test_occam_sweep_mlflow_cli_with_a_file_store(tmp_path, capsys, monkeypatch) -> None:
    _mlflow()
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # restored after the test
    spec = tmp_path / "spec.toml"
    spec.write_text('experiment = "noop"\n[axes]\nx = [1, 2]\n')
    uri = f"file:{tmp_path / 'mlruns'}"
    args = ["sweep", str(spec), "--store", str(tmp_path / "s"), "--no-progress", "--mlflow", uri]
    assert main(args) == 0
    assert f"MLflow: logged 2 runs to {uri}" in capsys.readouterr().err
    assert main(args) == 0  # resumed: the two runs are skipped and not logged twice
    assert f"MLflow: logged 0 runs to {uri}" in capsys.readouterr().err
    assert len(list((tmp_path / "mlruns").glob("*/*/meta.yaml"))) == 2


def test_missing_mlflow_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('experiment = "noop"\n[axes]\nx = [1]\n')
    monkeypatch.setitem(sys.modules, "mlflow", None)  # MLflow not installed
    assert main(["sweep", str(spec), "--store", str(tmp_path / "s"), "--mlflow"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'occamlab[mlflow]'" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # nothing ran, nothing was written
