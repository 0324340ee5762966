"""The run store: content-addressed ids, atomic run folders, claims, versions, the index."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from occamlab.errors import DataError, OccamError
from occamlab.store import (
    STORE_VERSION,
    RunStore,
    StoreVersionError,
    export_index,
    flatten,
    load_index,
    provenance,
    run_id,
)


def _done(store: RunStore, cfg: dict, result: dict, experiment: str = "noop") -> str:
    rid = store.register(experiment, cfg)
    claim = store.claim(rid)
    assert claim is not None
    tmp = store.begin(claim)
    store.finish(claim, tmp, env=provenance(cfg), result=result)
    claim.release()
    return rid


def test_run_id_is_a_hash_of_the_canonical_config() -> None:
    a = run_id("noop", {"x": 1.0, "model": {"d": 2, "L": 1}})
    b = run_id("noop", {"model": {"L": 1, "d": 2}, "x": 1.0})
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert run_id("train", {"x": 1.0, "model": {"d": 2, "L": 1}}) != a
    assert run_id("noop", {"x": 1.5, "model": {"d": 2, "L": 1}}) != a


def test_version_file_and_mismatch(tmp_path) -> None:
    root = tmp_path / "s"
    RunStore(root)
    info = json.loads((root / "store.json").read_text())
    assert info == {"format": "occamlab.store", "version": STORE_VERSION}
    RunStore(root)  # reopening is fine
    (root / "store.json").write_text(json.dumps({"format": "occamlab.store", "version": 99}))
    with pytest.raises(StoreVersionError, match="version 99.*reads version 1"):
        RunStore(root)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(StoreVersionError, match="not an occamlab run store"):
        RunStore(other)
    assert issubclass(StoreVersionError, DataError)


def test_a_store_being_created_by_another_process_is_not_foreign(tmp_path) -> None:
    # the other process's temporary version file (before its rename) does not make it foreign
    racing = tmp_path / "racing"
    racing.mkdir()
    (racing / ".store.json.1a2b3c4d.tmp").write_text("{")
    RunStore(racing)
    assert json.loads((racing / "store.json").read_text())["version"] == STORE_VERSION
    # runs/ already made by the other process, and its store.json in place: opened as a store
    done = tmp_path / "done"
    RunStore(done)
    RunStore(done)
    assert sorted(p.name for p in done.iterdir()) == ["locks", "runs", "store.json"]


def test_run_lifecycle_pending_running_done_failed(tmp_path) -> None:
    store = RunStore(tmp_path / "s")
    rid = store.register("noop", {"x": 1.0})
    assert store.register("noop", {"x": 1.0}) == rid  # idempotent
    assert store.status(rid) == ("pending", None)
    claim = store.claim(rid)
    assert claim is not None and store.claim(rid) is None  # exclusive
    tmp = store.begin(claim)
    assert store.status(rid) == ("running", None)
    assert store.ids() == [rid]  # the temporary folder is not a run
    store.finish(claim, tmp, env={"host": "h"}, error="RuntimeError: boom")
    claim.release()
    assert store.status(rid) == ("failed", "RuntimeError: boom")
    rec = store.read(rid)
    assert rec["config"] == {"x": 1.0} and rec["result"] is None and rec["env"] == {"host": "h"}
    rid2 = _done(store, {"x": 2.0}, {"value": 2.0})
    assert store.status(rid2) == ("done", None)
    folder = store.path(rid2)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "env.json", "metrics.jsonl", "result.json", "status"]
    assert store.resolve(rid2[:6]) == rid2
    with pytest.raises(OccamError, match="no run"):
        store.resolve("zzzz")


def test_running_without_a_holder_reads_as_pending(tmp_path) -> None:
    store = RunStore(tmp_path / "s")
    rid = store.register("noop", {"x": 1.0})
    (store.path(rid) / "status").write_text("running\npid 1\n")  # a killed run's last word
    assert store.status(rid) == ("pending", None)
    claim = store.claim(rid)
    assert store.status(rid) == ("running", None)  # held: really running
    claim.release()


def test_half_written_run_is_ignored_and_cleaned(tmp_path) -> None:
    store = RunStore(tmp_path / "s")
    rid = _done(store, {"x": 1.0}, {"value": 1.0})
    before = (store.path(rid) / "result.json").read_text()
    # a crash while re-running: a temporary folder with half a result and no status
    half = store.runs_dir / f".tmp-{rid}-deadbeef"
    half.mkdir()
    (half / "config.json").write_text("{}")
    (half / "result.json").write_text('{"value": ')
    assert store.ids() == [rid]
    assert len(load_index(store)) == 1
    # a temporary folder whose run is held by a live process is left alone
    claim = store.claim(rid)
    assert store.clean() == []
    claim.release()
    assert store.clean() == [half.name]
    assert not half.exists()
    assert (store.path(rid) / "result.json").read_text() == before
    # a complete temporary folder whose rename was cut short is moved into place
    rid2 = store.register("noop", {"x": 2.0})
    claim = store.claim(rid2)
    tmp = store.begin(claim)
    (tmp / "result.json").write_text('{"value": 2.0}\n')
    (tmp / "status").write_text("done\n")
    claim.release()
    os.rename(store.path(rid2), store.runs_dir / f".trash-{rid2}-00000000")
    assert rid2 not in store.ids()
    store.clean()
    assert store.status(rid2) == ("done", None)
    assert store.read(rid2)["result"] == {"value": 2.0}
    assert [p.name for p in store.runs_dir.iterdir() if p.name.startswith(".")] == []


def test_provenance_records_what_a_rerun_needs() -> None:
    env = provenance({"seed": 7})
    for key in ("git", "versions", "torch_threads", "thread_env", "seed", "host", "python"):
        assert key in env
    assert env["seed"] == 7
    assert env["versions"]["numpy"]
    json.dumps(env)


def test_index_and_export_round_trip(tmp_path) -> None:
    store = RunStore(tmp_path / "s")
    for d, n in [(8, 100), (16, 200), (32, 400)]:
        _done(store, {"model": {"d_model": d}, "steps": n, "tags": [1, 2]},
              {"n_params": d * d * 12, "tokens_seen": n * 512, "best_val_loss": 3.0 - d / 100})
    store.register("noop", {"x": 1.0})
    df = load_index(store)
    assert len(df) == 4
    assert set(df["status"]) == {"done", "pending"}
    for col in ("id", "status", "config.model.d_model", "config.steps", "n_params",
                "tokens_seen", "best_val_loss", "env.host"):
        assert col in df.columns
    done = load_index(store, status="done")
    assert len(done) == 3
    for fmt in ("csv", "parquet", "json"):
        path = tmp_path / f"runs.{fmt}"
        assert export_index(done, path) == fmt
        back = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                "json": lambda p: pd.read_json(p, orient="records")}[fmt](path)
        assert list(back.columns) == list(done.columns)
        assert back["id"].astype(str).tolist() == done["id"].tolist()
        assert back["best_val_loss"].tolist() == pytest.approx(done["best_val_loss"].tolist())
        assert back["config.model.d_model"].tolist() == done["config.model.d_model"].tolist()
    assert sorted(done["config.model.d_model"]) == [8, 16, 32]
    with pytest.raises(OccamError, match="export format"):
        export_index(done, tmp_path / "runs.xlsx")
    assert flatten({"a": {"b": 1}, "c": [1, 2]}) == {"a.b": 1, "c": "[1, 2]"}


def test_export_is_readable_by_the_scaling_library(tmp_path) -> None:
    from occamlab.scaling import read_table

    store = RunStore(tmp_path / "s")
    _done(store, {"steps": 1}, {"n_params_non_embedding": 1000, "tokens_seen": 5, "best_val_loss": 2.5})
    export_index(load_index(store), tmp_path / "r.csv")
    t = read_table(str(tmp_path / "r.csv"))
    assert float(t["best_val_loss"].iloc[0]) == 2.5


def test_clean_leaves_fresh_registrations_alone(tmp_path) -> None:
    store = RunStore(tmp_path / "s")
    reg = store.runs_dir / ".reg-0123456789abcdef-00000000"
    reg.mkdir()
    assert store.clean() == [] and reg.exists()  # another sweep may be registering it now
    old = time.time() - 3600
    os.utime(reg, (old, old))
    assert store.clean() == [reg.name] and not reg.exists()
