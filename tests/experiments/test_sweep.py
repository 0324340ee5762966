"""Running sweeps: resume, failures and retries, time limits, the process pool, two sweeps on one
store at once, a sweep killed with SIGKILL, and tiny real training runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from occamlab.experiments import (
    InlineBackend,
    Progress,
    SweepResult,
    parse_spec,
    run_sweep,
)
from occamlab.store import RunStore, load_index


def _noop(axes: dict, **base) -> list:
    return parse_spec({"experiment": "noop", "base": base, "axes": axes}).resolve()


def _log_counts(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(line for line in path.read_text().splitlines() if line)


def test_resume_skips_runs_already_done(tmp_path, result_contract) -> None:
    log = tmp_path / "log.jsonl"
    store = tmp_path / "s"
    first = run_sweep(_noop({"x": [1, 2]}, log=str(log)), store, jobs=0)
    assert (first.n_done, first.n_skipped, first.n_failed) == (2, 0, 0)
    events: list[Progress] = []
    full = run_sweep(_noop({"x": [1, 2, 3, 4]}, log=str(log)), store, jobs=0,
                     progress=events.append)
    assert (full.n_done, full.n_skipped) == (2, 2)
    again = run_sweep(_noop({"x": [1, 2, 3, 4]}, log=str(log)), store, jobs=0)
    assert (again.n_done, again.n_skipped) == (0, 4)
    counts = _log_counts(log)
    assert len(counts) == 4 and set(counts.values()) == {1}  # each run executed once
    assert events[-1].done + events[-1].skipped == 4 and events[-1].running == 0
    assert "4/4 done" in events[-1].line()
    result_contract(full)
    df = load_index(store)
    assert sorted(df["value"]) == [1.0, 2.0, 3.0, 4.0]
    assert set(df["status"]) == {"done"}


def test_failures_are_recorded_and_retried(tmp_path) -> None:
    store = tmp_path / "s"
    res = run_sweep(_noop({"fail": ["", "boom"]}), store, jobs=0, retries=1)
    assert (res.n_done, res.n_failed, res.n_retries) == (1, 1, 1)
    assert res.failed[0][1] == "RuntimeError: boom"
    st = RunStore(store)
    rid = res.failed[0][0]
    assert st.status(rid) == ("failed", "RuntimeError: boom")
    assert "RuntimeError: boom" in (st.path(rid) / "traceback.txt").read_text()
    # a flaky run fails once and succeeds on its retry
    res = run_sweep(_noop({"x": [1]}, flaky=str(tmp_path / "flag")), store, jobs=0, retries=1)
    assert (res.n_done, res.n_failed, res.n_retries) == (1, 0, 1)
    # without retries a failed run stays failed; a later sweep runs it again
    res = run_sweep(_noop({"x": [2]}, flaky=str(tmp_path / "flag2")), store, jobs=0)
    assert res.n_failed == 1
    res = run_sweep(_noop({"x": [2]}, flaky=str(tmp_path / "flag2")), store, jobs=0)
    assert (res.n_done, res.n_failed) == (1, 0)
    assert SweepResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res


def test_time_limit_fails_a_slow_run(tmp_path) -> None:
    t0 = time.perf_counter()
    res = run_sweep(_noop({"sleep": [0.0, 30.0]}), tmp_path / "s", jobs=0, time_limit=0.5)
    assert time.perf_counter() - t0 < 20
    assert (res.n_done, res.n_failed) == (1, 1)
    assert "RunTimeout: time limit of 0.5 s exceeded" in res.failed[0][1]


def test_process_pool_runs_with_one_thread_per_worker(tmp_path) -> None:
    store = tmp_path / "s"
    runs = _noop({"x": [1, 2, 3], "sleep": [0.0, 20.0]})
    res = run_sweep(runs, store, jobs=2, time_limit=1.0)
    assert (res.n_done, res.n_failed, res.jobs) == (3, 3, 2)
    assert all("time limit" in e for _, e in res.failed)
    st = RunStore(store)
    envs = [st.read(r)["env"] for r in st.ids()]
    assert all(e["thread_env"]["OMP_NUM_THREADS"] == "1" for e in envs)
    assert len({e["pid"] for e in envs}) >= 1 and all(e["pid"] != os.getpid() for e in envs)


def test_a_backend_is_pluggable(tmp_path) -> None:
    class Counting(InlineBackend):
        n = 0

        def submit(self, task):  # type: ignore[no-untyped-def]
            Counting.n += 1
            return super().submit(task)

    res = run_sweep(_noop({"x": [1, 2, 3]}), tmp_path / "s", backend=Counting())
    assert res.n_done == 3 and Counting.n == 3


def _spec_file(tmp_path: Path, n: int, sleep: float, log: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(f'experiment = "noop"\n[base]\nsleep = {sleep}\nlog = "{log}"\n'
                    f"[axes]\nx = {{lin = [1, {n}], num = {n}}}\n")
    return path


def _occam(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "occamlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_two_sweeps_on_one_store_never_run_a_run_twice(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    spec = _spec_file(tmp_path, 8, 0.3, log)
    store = tmp_path / "s"
    procs = [_occam("sweep", str(spec), "--store", str(store), "--jobs", "0", "--no-progress",
                    "--json", str(tmp_path / f"r{i}.json")) for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    counts = _log_counts(log)
    assert len(counts) == 8 and set(counts.values()) == {1}
    results = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(2)]
    assert sum(r["n_done"] for r in results) == 8  # they shared the work
    assert all(r["n_done"] + r["n_skipped"] == 8 for r in results)  # each saw it all finish
    st = RunStore(store)
    assert all(st.status(r) == ("done", None) for r in st.ids())


def test_a_sweep_killed_with_sigkill_resumes_and_completes_every_run_once(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    spec = _spec_file(tmp_path, 8, 0.4, log)
    store = tmp_path / "s"
    p = _occam("sweep", str(spec), "--store", str(store), "--jobs", "2", "--no-progress",
               start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = len(list(store.glob("runs/*/result.json"))) if store.exists() else 0
        if done >= 3:
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the sweep and its workers, mid-run
    p.communicate()
    st = RunStore(store)
    n_before = sum(st.status(r) == ("done", None) for r in st.ids())
    assert 3 <= n_before < 8
    assert all(st.status(r)[0] in ("done", "pending") for r in st.ids())  # no stale "running"
    q = _occam("sweep", str(spec), "--store", str(store), "--jobs", "2", "--no-progress",
               "--json", str(tmp_path / "r.json"))
    out, err = q.communicate(timeout=120)
    assert q.returncode == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["n_skipped"] == n_before and r["n_done"] == 8 - n_before
    assert [x.name for x in st.runs_dir.iterdir() if x.name.startswith(".")] == []
    for rid in st.ids():
        rec = st.read(rid)
        assert rec["status"] == "done" and rec["result"]["value"] == rec["config"]["x"]
    counts = _log_counts(log)
    assert len(counts) == 8
    # a run is counted twice only if the kill fell between its last line and its commit
    assert sum(v - 1 for v in counts.values()) <= 2


def test_tiny_training_runs_store_what_occam_fit_needs(tmp_path) -> None:
    spec = parse_spec({
        "experiment": "train",
        "base": {"batch_size": 4, "eval_every": 100, "eval_tokens": 256, "warmup_steps": 2,
                 "threads": 1, "model": {"context": 16, "d_model": 8, "n_layer": 1, "n_head": 2},
                 "data": {"corpus": "shakespeare", "max_bytes": 100000}},
        "axes": {"steps": [6, 12]},
    })
    res = run_sweep(spec.resolve(), tmp_path / "s", jobs=0)
    assert res.n_done == 2, res.failed
    df = load_index(tmp_path / "s")
    for col in ("n_params", "n_params_non_embedding", "tokens_seen", "best_val_loss", "flops"):
        assert col in df.columns
    assert sorted(df["tokens_seen"]) == [6 * 4 * 16, 12 * 4 * 16]
    d, L = 8, 1
    assert set(df["n_params_non_embedding"]) == {L * (12 * d * d + 13 * d) + 2 * d}
    assert (df["best_val_loss"] > 0).all() and (df["best_val_loss"] < 6).all()
    st = RunStore(tmp_path / "s")
    folder = st.path(st.ids()[0])
    metrics = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, len(metrics) + 1)) or metrics[0]["step"] in (0, 1)
    assert (folder / "best").is_dir() and (folder / "summary.json").exists()
    assert st.read(st.ids()[0])["env"]["torch_threads"] == 1
    # the same runs in a worker process of the pool, into another store: identical results
    again = run_sweep(spec.resolve(), tmp_path / "s2", jobs=1)
    assert again.n_done == 2
    df2 = load_index(tmp_path / "s2").set_index("id").loc[df["id"]]
    assert df2["best_val_loss"].tolist() == df["best_val_loss"].tolist()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow at far-off fit starts
def test_smoke_sweep_then_chinchilla_fit(tmp_path) -> None:
    from occamlab.cli import main

    spec = Path(__file__).resolve().parents[2] / "configs" / "sweep-smoke.toml"
    assert main(["sweep", str(spec), "--store", str(tmp_path / "s"), "--jobs", "2",
                 "--no-progress"]) == 0
    assert main(["runs", "export", str(tmp_path / "r.csv"), "--store", str(tmp_path / "s")]) == 0
    assert main(["fit", "chinchilla", str(tmp_path / "r.csv"), "--n", "n_params_non_embedding",
                 "--d", "tokens_seen", "--loss", "best_val_loss", "--bootstrap", "0"]) == 0


def test_a_worker_that_dies_fails_its_run_and_the_sweep_goes_on(tmp_path) -> None:
    # one worker: only the crashing run is executing when the pool breaks (with more workers,
    # the runs beside it die too and are charged an attempt: docs/experiments.md)
    runs = _noop({"x": [1, 2, 3, 4], "crash": [False, True]})
    res = run_sweep(runs, tmp_path / "s", jobs=1, retries=1)
    st = RunStore(tmp_path / "s")
    crashed = [r.id for r in runs if r.config["crash"]]
    assert res.n_done == 4 and res.n_failed == 4 and res.n_retries == 4, res
    assert {i for i, _ in res.failed} == set(crashed)
    assert ["WorkerDied" in e for _, e in res.failed] == [True] * 4, res.failed
    assert [st.status(i)[0] for i in crashed] == ["failed"] * 4
    assert [p.name for p in st.runs_dir.iterdir() if p.name.startswith(".")] == []
