"""Executing one run, and the backends that execute many: a process pool or this process.

:func:`execute` is what a worker does with a :class:`Task`: claim the run (an ``flock`` in the
store, so two sweeps never run it twice), skip it if it is already done, run the experiment in a
temporary folder under a time limit, and commit the folder (result or error, provenance, status
last). Backends only decide where :func:`execute` is called; they satisfy :class:`Backend`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from occamlab._threads import single_thread_env
from occamlab.errors import ConfigError
from occamlab.store import RunStore, provenance

from ._registry import get_experiment

__all__ = ["Task", "Outcome", "Backend", "LocalBackend", "InlineBackend", "execute",
           "RunTimeout", "THREAD_ENV", "WORKER_DIED", "BACKENDS", "check_backend"]

THREAD_ENV = single_thread_env()


WORKER_DIED = "WorkerDied: the process running it died (killed, out of memory or crashed)"


BACKENDS = ("local", "ray")


def check_limits(retries: Any = 0, time_limit: Any = None) -> None:
    """``retries`` is a non-negative integer and ``time_limit`` (seconds) ``None`` or a positive
    finite number; otherwise a :class:`ConfigError` naming the value."""
    import math

    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"--retries must be a non-negative integer, got {retries!r}")
    if time_limit is not None and (isinstance(time_limit, bool)
                                   or not isinstance(time_limit, (int, float))
                                   or not math.isfinite(time_limit) or time_limit <= 0):
        raise ConfigError(f"--time-limit must be a positive number of seconds, got {time_limit!r}")


def check_backend(jobs: Any, kind: Any = "local", address: Any = None, *, retries: Any = 0,
                  time_limit: Any = None) -> None:
    """Check the execution settings before anything runs.

    ``jobs`` is a non-negative integer (``0`` runs in this process; at least 1 with Ray),
    ``kind`` one of :data:`BACKENDS`, and ``address`` (a Ray cluster) only goes with Ray;
    ``retries`` and ``time_limit`` as :func:`check_limits` allows.

    Raises
    ------
    ConfigError
        Naming the bad value and what is allowed.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ConfigError(f"--jobs must be a non-negative integer, got {jobs!r}")
    check_limits(retries, time_limit)
    if kind not in BACKENDS:
        raise ConfigError(f"unknown backend {kind!r}; allowed: {', '.join(BACKENDS)}")
    if kind == "ray" and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 with --backend ray, got {jobs}")
    if address is not None:
        if kind != "ray":
            raise ConfigError("--address applies to the Ray backend only (add --backend ray)")
        if not isinstance(address, str) or not address.strip():
            raise ConfigError(f"--address must name a Ray cluster (auto, HOST:PORT, "
                              f"ray://HOST:10001), got {address!r}")


class RunTimeout(Exception):
    """A run exceeded its time limit."""


@dataclass(frozen=True)
class Task:
    """One run to execute: where its store is, what to run, and its limits."""

    store: str
    run_id: str
    experiment: str
    config: dict[str, Any]
    time_limit: float | None = None
    wait: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class Outcome:
    """What became of a task: ``done``, ``failed`` (with the error), ``skipped`` (already done,
    possibly by another sweep) or ``busy`` (another process holds the run)."""

    run_id: str
    status: str
    error: str | None = None
    elapsed_s: float = 0.0


class Backend(Protocol):
    """Where runs execute. ``submit`` returns a future of the task's :class:`Outcome`."""

    jobs: int

    def submit(self, task: Task) -> cf.Future[Outcome]: ...

    def close(self, *, cancel: bool = False) -> None: ...


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise RunTimeout(f"time limit of {seconds:g} s exceeded")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_STORES: dict[str, RunStore] = {}


def execute(task: Task, *, where: dict[str, Any] | None = None) -> Outcome:
    """Run one task in this process (see the module docstring); never raises for a run's error.

    ``where`` adds keys to the run's provenance (``env.json``) naming where it ran, e.g. the
    Ray node (``{"ray_node_id": ...}``)."""
    store = _STORES.get(task.store)
    if store is None:
        store = _STORES[task.store] = RunStore(task.store)
    claim = store.claim(task.run_id, wait=task.wait)
    if claim is None:
        return Outcome(task.run_id, "busy")
    try:
        if store.raw_status(task.run_id) == "done":
            return Outcome(task.run_id, "skipped")
        store.register(task.experiment, task.config)
        t0 = time.perf_counter()
        tmp = store.begin(claim)
        try:
            exp = get_experiment(task.experiment)
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.set_num_threads(1)
            with _time_limit(task.time_limit), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")  # each distinct warning once
                output = exp.run(exp.make_config(task.config), tmp)
            files = list(output.files) + _keep_warnings(caught, tmp)
            result = output.result
            error = None
        except KeyboardInterrupt:
            shutil.rmtree(tmp, ignore_errors=True)
            store.mark_pending(task.run_id)
            raise
        except BaseException as exc:  # a run's failure is recorded, not raised
            error = f"{type(exc).__name__}: {exc}".strip()
            (tmp / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
            result, files = None, []
        elapsed = time.perf_counter() - t0
        env = provenance(task.config)
        env.update({"experiment": task.experiment, "elapsed_s": elapsed, "attempt": task.attempt,
                    "files": files})
        env.update(where or {})
        if error is None:
            store.finish(claim, tmp, env=env, result=result)
            return Outcome(task.run_id, "done", None, elapsed)
        store.finish(claim, tmp, env=env, error=error)
        return Outcome(task.run_id, "failed", error, elapsed)
    finally:
        claim.release()


def _keep_warnings(caught: list[warnings.WarningMessage], folder: Path) -> list[str]:
    """A run's warnings go to ``warnings.txt`` in its folder (listed in its files), not to the
    console of a sweep: what they say about the result is in the result itself."""
    if not caught:
        return []
    lines = dict.fromkeys(f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})"
                          for w in caught)
    (folder / "warnings.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["warnings.txt"]


def _init_worker() -> None:
    """Pool worker start-up: one thread per math library, before torch is imported."""
    os.environ.update(THREAD_ENV)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and cleans up


class LocalBackend:
    """A pool of ``jobs`` worker processes on this machine (spawned, one thread each)."""

    def __init__(self, jobs: int = 1) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"LocalBackend needs jobs >= 1, got {jobs!r} (jobs = 0 runs in "
                              "this process: InlineBackend)")
        self.jobs = jobs
        self._pool = cf.ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                            mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: Task) -> cf.Future[Outcome]:
        return self._pool.submit(execute, task)

    def close(self, *, cancel: bool = False) -> None:
        if cancel:  # interrupted: stop the workers now; their runs read as pending again
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class InlineBackend:
    """Runs each task in this process at submission (``--jobs 0``; tests, debugging)."""

    jobs = 1

    def submit(self, task: Task) -> cf.Future[Outcome]:
        fut: cf.Future[Outcome] = cf.Future()
        try:
            fut.set_result(execute(task))
        except Exception as exc:  # an infrastructure error, not a run's
            fut.set_exception(exc)
        return fut

    def close(self, *, cancel: bool = False) -> None:
        return None
