"""The Ray backend on a real local Ray instance with two workers (no mock): the same outcomes,
skips, retries, time limits, worker deaths and training results as the local process pool.

Ray is started once for the module (about 5-10 s here) and shut down at the end; the backend finds
it initialised and uses it, exactly as it does in a notebook that called ``ray.init`` itself.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

import pytest

from occamlab.cli import main
from occamlab.experiments import RayBackend, SweepResult, parse_spec, run_sweep
from occamlab.store import RunStore, load_index

# Ray (and the gRPC/protobuf/OpenTelemetry stack it loads) may warn about its own deprecated
# internals; those are not ours to fix, so only DeprecationWarnings raised from Ray's modules are
# ignored here. Everything else still fails the test (pytest runs with warnings as errors).
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:google.*"),
]


def _noop(axes: dict, **base) -> list:
    return parse_spec({"experiment": "noop", "base": base, "axes": axes}).resolve()


def test_the_backend_starts_a_local_ray_instance_and_shuts_it_down(tmp_path) -> None:
    # runs before the module's shared instance exists (tests run in file order)
    import ray

    assert not ray.is_initialized()
    be = RayBackend(2)
    try:
        assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2.0
        # Ray's default worker niceness is 15; ours is the local pool's, 0
        assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == 0
        res = run_sweep(_noop({"x": [1, 2]}), tmp_path / "s", backend=be)
        assert (res.n_done, res.jobs) == (2, 2)
    finally:
        be.close()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, object_store_memory=128 * 1024**2,
             _system_config={"worker_niceness": 0})
    try:
        yield ray
    finally:
        ray.shutdown()


def _log_counts(path: Path) -> Counter:
    return Counter(x for x in path.read_text().splitlines() if x) if path.exists() else Counter()


def test_noop_sweep_resumes_retries_and_times_out_on_ray(ray_instance, tmp_path) -> None:
    store, log = tmp_path / "s", tmp_path / "log.jsonl"
    first = run_sweep(_noop({"x": [1, 2]}, log=str(log)), store, jobs=2, backend="ray")
    assert (first.n_done, first.n_skipped, first.n_failed, first.jobs) == (2, 0, 0, 2)
    assert ray_instance.is_initialized()  # the backend leaves a Ray it did not start running
    full = run_sweep(_noop({"x": [1, 2, 3, 4]}, log=str(log)), store, jobs=2, backend="ray")
    assert (full.n_done, full.n_skipped, full.n_failed) == (2, 2, 0)
    counts = _log_counts(log)
    assert len(counts) == 4 and set(counts.values()) == {1}  # each run executed exactly once
    st = RunStore(store)
    envs = [st.read(r)["env"] for r in st.ids()]
    assert all(e["pid"] != os.getpid() for e in envs)  # executed in Ray workers
    assert all(e["thread_env"]["OMP_NUM_THREADS"] == "1" for e in envs)
    assert sorted(load_index(store)["value"]) == [1.0, 2.0, 3.0, 4.0]
    # a flaky run is retried by the sweep (Ray's own retries are off); a slow one hits the limit
    runs = _noop({"x": [5]}, flaky=str(tmp_path / "flag")) + _noop({"x": [6]}, sleep=30.0)
    res = run_sweep(runs, store, jobs=2, backend="ray", retries=1, time_limit=1.0)
    assert (res.n_done, res.n_failed, res.n_retries) == (1, 1, 2), res
    assert res.failed[0][0] == runs[1].id
    assert res.failed[0][1] == "RunTimeout: time limit of 1 s exceeded"
    assert st.status(runs[1].id) == ("failed", "RunTimeout: time limit of 1 s exceeded")
    assert [p.name for p in st.runs_dir.iterdir() if p.name.startswith(".")] == []


def test_a_ray_worker_that_dies_fails_its_run_and_the_sweep_goes_on(ray_instance,
                                                                     tmp_path) -> None:
    runs = _noop({"x": [1, 2, 3], "crash": [False, True]})
    res = run_sweep(runs, tmp_path / "s", jobs=2, backend="ray", retries=1)
    crashed = {r.id for r in runs if r.config["crash"]}
    assert (res.n_done, res.n_failed, res.n_retries) == (3, 3, 3), res
    assert {i for i, _ in res.failed} == crashed
    assert all(e.startswith("WorkerDied") for _, e in res.failed), res.failed
    st = RunStore(tmp_path / "s")
    assert {st.status(i)[0] for i in crashed} == {"failed"}
    assert [p.name for p in st.runs_dir.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_ray_sweep_stops_its_tasks_and_leaves_them_pending(ray_instance,
                                                                          tmp_path) -> None:
    import time

    runs = _noop({"x": [1, 2]}, sleep=60.0)

    def interrupt(p) -> None:  # Ctrl-C two seconds in, while both runs execute
        if p.elapsed_s > 2.0:
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, tmp_path / "s", jobs=2, backend="ray", progress=interrupt)
    st = RunStore(tmp_path / "s")
    deadline = time.monotonic() + 20
    while {st.status(r.id)[0] for r in runs} != {"pending"} and time.monotonic() < deadline:
        time.sleep(0.1)  # the killed workers' claims are released by the kernel
    assert {st.status(r.id)[0] for r in runs} == {"pending"}
    assert time.perf_counter() - t0 < 40  # the 60 s runs were stopped, not waited for
    assert ray_instance.is_initialized()  # a Ray the backend did not start is left running


def test_tiny_training_runs_give_the_same_results_as_the_local_backend(ray_instance,
                                                                        tmp_path) -> None:
    spec = parse_spec({
        "experiment": "train",
        "base": {"batch_size": 4, "eval_every": 100, "eval_tokens": 256, "warmup_steps": 2,
                 "threads": 1, "model": {"context": 16, "d_model": 8, "n_layer": 1, "n_head": 2},
                 "data": {"corpus": "shakespeare", "max_bytes": 100000}},
        "axes": {"steps": [6, 12], "seed": [0, 1]},
    })
    runs = spec.resolve()
    on_ray = run_sweep(runs, tmp_path / "ray", jobs=2, backend="ray")
    local = run_sweep(runs, tmp_path / "local", jobs=2)
    assert on_ray.n_done == local.n_done == 4, (on_ray.failed, local.failed)
    a = load_index(tmp_path / "ray").set_index("id").sort_index()
    b = load_index(tmp_path / "local").set_index("id").sort_index()
    assert a.index.tolist() == b.index.tolist() == sorted(r.id for r in runs)
    assert a["best_val_loss"].tolist() == b["best_val_loss"].tolist()  # bit for bit
    assert a["tokens_seen"].tolist() == b["tokens_seen"].tolist()
    assert len(set(a["best_val_loss"])) == 4  # the runs differ: the comparison can fail
    st = RunStore(tmp_path / "ray")
    assert {st.read(i)["env"]["torch_threads"] for i in st.ids()} == {1}


def test_occam_sweep_backend_ray_cli(ray_instance, tmp_path, capsys) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('experiment = "noop"\n[axes]\nx = [1, 2, 3]\n')
    out = tmp_path / "r.json"
    args = ["sweep", str(spec), "--backend", "ray", "--jobs", "2", "--store",
            str(tmp_path / "s"), "--no-progress", "--json", str(out)]
    assert main(args) == 0
    res = SweepResult.from_dict(json.loads(out.read_text()))
    assert (res.n_done, res.jobs) == (3, 2)
    assert main(args) == 0  # resumed: nothing left to run
    assert SweepResult.from_dict(json.loads(out.read_text())).n_skipped == 3
    assert main(args[:-2] + ["--dry-run"]) == 0
    assert "backend ray" in capsys.readouterr().out


def test_ray_errors_are_clear(tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('experiment = "noop"\n[axes]\nx = [1]\n')
    base = ["sweep", str(spec), "--store", str(tmp_path / "s"), "--no-progress"]
    assert main(base + ["--address", "auto"]) == 2
    assert "--address applies to the Ray backend only" in capsys.readouterr().err
    assert main(base + ["--backend", "ray", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1 with --backend ray" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # Ray not installed
    assert main(base + ["--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'occamlab[ray]'" in err and "Traceback" not in err
    with pytest.raises(Exception, match=r"pip install 'occamlab\[ray\]'"):
        RayBackend(2)
    assert not (tmp_path / "s").exists()  # nothing was written
