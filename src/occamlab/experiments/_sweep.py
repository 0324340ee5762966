"""Running a sweep: register its runs, skip the finished ones, execute the rest, retry failures."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from typing import Any

from occamlab._render import Rendered, Table, fmt
from occamlab.errors import OccamError
from occamlab.store import RunStore

from ._backends import make_backend
from ._execute import WORKER_DIED, Backend, Outcome, Task
from ._spec import PlannedRun

__all__ = ["SweepResult", "Progress", "run_sweep", "plan_table", "BackendError"]



class BackendError(OccamError):
    """The execution backend failed (its workers died); the sweep stopped."""


@dataclass(frozen=True)
class Progress:
    """A progress event: counts so far and the estimated time left (seconds, or None)."""

    total: int
    done: int
    failed: int
    running: int
    skipped: int
    elapsed_s: float
    eta_s: float | None

    def line(self) -> str:
        eta = "?" if self.eta_s is None else _clock(self.eta_s)
        return (f"{self.done + self.skipped}/{self.total} done ({self.skipped} already), "
                f"{self.failed} failed, {self.running} running, "
                f"elapsed {_clock(self.elapsed_s)}, ETA {eta}")


def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class SweepResult(Rendered):
    """What a sweep did: runs done now, skipped (already done), failed (with errors), time."""

    store: str
    n_runs: int
    n_done: int
    n_skipped: int
    n_failed: int
    n_retries: int
    elapsed_s: float
    jobs: int
    failed: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def _tables(self) -> list[Table]:
        rows: list[list[Any]] = [["runs", self.n_runs], ["done now", self.n_done],
                ["already done (skipped)", self.n_skipped], ["failed", self.n_failed],
                ["retries", self.n_retries], ["jobs", self.jobs],
                ["elapsed (s)", fmt(self.elapsed_s)]]
        notes = [f"store: {self.store}"] + [f"failed {i}: {e}" for i, e in self.failed[:10]]
        return [Table("Sweep", ["", "value"], rows, notes)]


def plan_table(runs: Sequence[PlannedRun], store: RunStore | None = None) -> Table:
    """The dry-run plan: one row per run with its id, stored status and swept values."""
    keys: list[str] = []
    for r in runs:
        keys.extend(k for k in r.point if k not in keys)
    rows = []
    for r in runs:
        st = store.status(r.id) if store is not None else None
        rows.append([r.id, st[0] if st else "new"] + [r.point.get(k, "") for k in keys])
    return Table(f"Plan: {len(runs)} runs of {runs[0].experiment if runs else '-'}",
                 ["id", "status"] + keys, rows)


def run_sweep(
    runs: Sequence[PlannedRun],
    store: RunStore | str,
    *,
    jobs: int = 1,
    backend: Backend | str | None = None,
    address: str | None = None,
    retries: int = 0,
    time_limit: float | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> SweepResult:
    """Execute ``runs`` into ``store``: finished runs are skipped, failed ones retried.

    Runs another process holds (a second sweep on the same store) are left to it and waited for
    at the end, so no run executes twice. ``progress`` is called after every outcome and about
    once a second. ``backend`` is a :class:`Backend` (the caller closes it) or a name for
    :func:`make_backend` (``"local"``, ``"ray"`` with ``address``). ``on_outcome`` is called in
    this process with every final outcome: ``done``, ``failed`` after its last attempt, and
    ``skipped`` (already done) runs, e.g. to log them to MLflow.
    """
    st = store if isinstance(store, RunStore) else RunStore(store)
    st.clean()
    t0 = time.perf_counter()
    for r in runs:
        st.register(r.experiment, r.config)
    todo = [r for r in runs if st.raw_status(r.id) != "done"]
    skipped = len(runs) - len(todo)
    if on_outcome is not None:
        todo_ids = {r.id for r in todo}
        for r in runs:
            if r.id not in todo_ids:
                on_outcome(Outcome(r.id, "skipped"))
    kind = backend if isinstance(backend, str) else "local"
    own = backend is None or isinstance(backend, str)
    be: Backend = (make_backend(jobs, kind, address=address) if backend is None
                   or isinstance(backend, str) else backend)
    counts = {"done": 0, "failed": 0, "retries": 0, "skipped": skipped}
    failed: dict[str, str] = {}
    by_id = {r.id: r for r in todo}
    inflight: dict[cf.Future[Outcome], Task] = {}

    submit_later: list[Task] = []
    broken = False

    def submit(r: PlannedRun, attempt: int = 1, wait: bool = False) -> None:
        nonlocal broken
        t = Task(str(st.root), r.id, r.experiment, r.config, time_limit, wait, attempt)
        if broken:
            submit_later.append(t)
            return
        try:
            inflight[be.submit(t)] = t
        except BrokenExecutor:
            broken = True
            submit_later.append(t)

    def report() -> None:
        if progress is None:
            return
        finished = counts["done"] + counts["failed"]
        el = time.perf_counter() - t0
        left = len(todo) - finished - (counts["skipped"] - skipped)
        eta = el / finished * left if finished else None
        progress(Progress(len(runs), counts["done"], counts["failed"],
                          min(be.jobs, len(inflight)), counts["skipped"], el, eta))

    deferred: list[PlannedRun] = []
    try:
        for r in todo:
            submit(r)
        report()
        while inflight or deferred:
            if not inflight:
                for r in deferred:  # held by another sweep: wait for it, then take what is left
                    submit(r, wait=True)
                deferred = []
            finished_futs, _ = cf.wait(list(inflight), timeout=1.0,
                                       return_when=cf.FIRST_COMPLETED)
            for fut in finished_futs:
                task = inflight.pop(fut)
                try:
                    out = fut.result()
                except BrokenExecutor:
                    # a worker died (killed, out of memory, crashed): the runs it had started are
                    # charged an attempt and recorded failed; the others are simply resubmitted
                    broken = True
                    if st.raw_status(task.run_id) != "running":
                        submit_later.append(task)  # had not started: no attempt charged
                        continue
                    out = Outcome(task.run_id, "failed", WORKER_DIED)
                    st.record_failure(task.run_id, WORKER_DIED)
                if out.status == "busy":
                    deferred.append(by_id[out.run_id])
                    continue
                elif out.status == "skipped":
                    counts["skipped"] += 1
                elif out.status == "done":
                    counts["done"] += 1
                    failed.pop(out.run_id, None)
                elif task.attempt <= retries:
                    counts["retries"] += 1
                    submit(by_id[out.run_id], attempt=task.attempt + 1)
                    continue
                else:
                    counts["failed"] += 1
                    failed[out.run_id] = out.error or "failed"
                if on_outcome is not None:
                    on_outcome(out)
            if broken and own and all(f.done() for f in inflight):
                be.close(cancel=True)
                be = make_backend(jobs, kind, address=address)
                broken = False
                again = submit_later[:]
                submit_later.clear()
                for t in again:
                    submit(by_id[t.run_id], attempt=t.attempt, wait=t.wait)
            elif broken and not own:
                raise BackendError("the backend's workers died; the sweep cannot go on (its "
                                   "finished runs are stored: run the same command to resume)")
            report()
    except BaseException:
        if own:
            be.close(cancel=True)
        raise
    if own:
        be.close()
    st.clean()  # what crashed workers left behind
    return SweepResult(store=str(st.root), n_runs=len(runs), n_done=counts["done"],
                       n_skipped=counts["skipped"], n_failed=counts["failed"],
                       n_retries=counts["retries"], elapsed_s=time.perf_counter() - t0,
                       jobs=be.jobs, failed=tuple(failed.items()))
