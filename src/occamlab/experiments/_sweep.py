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
from ._execute import WORKER_DIED, Backend, Outcome, Task, check_limits
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


class _Sweep:
    """The state of one :func:`run_sweep` call: the backend, the futures in flight, the counts.

    One method per job: submit a run, take one finished future, replace a backend whose workers
    died, report progress; :meth:`loop` drives them until nothing is left.
    """

    def __init__(self, runs: Sequence[PlannedRun], st: RunStore, todo: list[PlannedRun], *,
                 jobs: int, backend: Backend | str | None, address: str | None, retries: int,
                 time_limit: float | None, progress: Callable[[Progress], None] | None,
                 on_outcome: Callable[[Outcome], None] | None) -> None:
        self.runs, self.st, self.todo = runs, st, todo
        self.jobs, self.address, self.retries, self.time_limit = jobs, address, retries, time_limit
        self.progress, self.on_outcome = progress, on_outcome
        self.kind = backend if isinstance(backend, str) else "local"
        self.own = backend is None or isinstance(backend, str)
        self.be: Backend = (make_backend(jobs, self.kind, address=address) if self.own
                            else backend)  # type: ignore[assignment]
        self.skipped0 = len(runs) - len(todo)
        self.counts = {"done": 0, "failed": 0, "retries": 0, "skipped": self.skipped0}
        self.failed: dict[str, str] = {}
        self.by_id = {r.id: r for r in todo}
        self.inflight: dict[cf.Future[Outcome], Task] = {}
        self.submit_later: list[Task] = []
        self.deferred: list[PlannedRun] = []
        self.broken = False
        self.t0 = time.perf_counter()

    def submit(self, r: PlannedRun, attempt: int = 1, wait: bool = False) -> None:
        t = Task(str(self.st.root), r.id, r.experiment, r.config, self.time_limit, wait, attempt)
        if self.broken:
            self.submit_later.append(t)
            return
        try:
            self.inflight[self.be.submit(t)] = t
        except BrokenExecutor:
            self.broken = True
            self.submit_later.append(t)

    def report(self) -> None:
        if self.progress is None:
            return
        c = self.counts
        finished = c["done"] + c["failed"]
        el = time.perf_counter() - self.t0
        left = len(self.todo) - finished - (c["skipped"] - self.skipped0)
        eta = el / finished * left if finished else None
        self.progress(Progress(len(self.runs), c["done"], c["failed"],
                               min(self.be.jobs, len(self.inflight)), c["skipped"], el, eta))

    def _outcome(self, fut: cf.Future[Outcome]) -> None:
        """Account for one finished future: count it, retry it, or hand it back."""
        task = self.inflight.pop(fut)
        try:
            out = fut.result()
        except BrokenExecutor:
            # a worker died (killed, out of memory, crashed): the runs it had started are
            # charged an attempt and recorded failed; the others are simply resubmitted
            self.broken = True
            if self.st.raw_status(task.run_id) != "running":
                self.submit_later.append(task)  # had not started: no attempt charged
                return
            out = Outcome(task.run_id, "failed", WORKER_DIED)
            self.st.record_failure(task.run_id, WORKER_DIED)
        c = self.counts
        if out.status == "busy":
            self.deferred.append(self.by_id[out.run_id])
            return
        elif out.status == "skipped":
            c["skipped"] += 1
        elif out.status == "done":
            c["done"] += 1
            self.failed.pop(out.run_id, None)
        elif task.attempt <= self.retries:
            c["retries"] += 1
            self.submit(self.by_id[out.run_id], attempt=task.attempt + 1)
            return
        else:
            c["failed"] += 1
            self.failed[out.run_id] = out.error or "failed"
        if self.on_outcome is not None:
            self.on_outcome(out)

    def _recover(self) -> None:
        """A backend whose workers died: ours is replaced once its futures are settled."""
        if self.broken and self.own and all(f.done() for f in self.inflight):
            self.be.close(cancel=True)
            self.be = make_backend(self.jobs, self.kind, address=self.address)
            self.broken = False
            again = self.submit_later[:]
            self.submit_later.clear()
            for t in again:
                self.submit(self.by_id[t.run_id], attempt=t.attempt, wait=t.wait)
        elif self.broken and not self.own:
            raise BackendError("the backend's workers died; the sweep cannot go on (its "
                               "finished runs are stored: run the same command to resume)")

    def loop(self) -> None:
        for r in self.todo:
            self.submit(r)
        self.report()
        while self.inflight or self.deferred:
            if not self.inflight:
                for r in self.deferred:  # held by another sweep: wait for it, then take the rest
                    self.submit(r, wait=True)
                self.deferred = []
            finished, _ = cf.wait(list(self.inflight), timeout=1.0,
                                  return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                self._outcome(fut)
            self._recover()
            self.report()

    def result(self) -> SweepResult:
        c = self.counts
        return SweepResult(store=str(self.st.root), n_runs=len(self.runs), n_done=c["done"],
                           n_skipped=c["skipped"], n_failed=c["failed"], n_retries=c["retries"],
                           elapsed_s=time.perf_counter() - self.t0, jobs=self.be.jobs,
                           failed=tuple(self.failed.items()))


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
    check_limits(retries, time_limit)  # before the store is touched
    st = store if isinstance(store, RunStore) else RunStore(store)
    st.clean()
    for r in runs:
        st.register(r.experiment, r.config)
    todo = [r for r in runs if st.raw_status(r.id) != "done"]
    if on_outcome is not None:
        todo_ids = {r.id for r in todo}
        for r in runs:
            if r.id not in todo_ids:
                on_outcome(Outcome(r.id, "skipped"))
    sweep = _Sweep(runs, st, todo, jobs=jobs, backend=backend, address=address, retries=retries,
                   time_limit=time_limit, progress=progress, on_outcome=on_outcome)
    try:
        sweep.loop()
    except BaseException:
        if sweep.own:
            sweep.be.close(cancel=True)
        raise
    if sweep.own:
        sweep.be.close()
    st.clean()  # what crashed workers left behind
    return sweep.result()
