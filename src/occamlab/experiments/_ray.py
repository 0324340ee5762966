"""The Ray backend: the same :func:`~occamlab.experiments.execute` on the workers of a Ray cluster.

``RayBackend(jobs)`` with no address starts a local Ray instance with ``num_cpus=jobs`` (no
dashboard, workers at niceness 0 like the local pool's rather than Ray's default 15) and shuts
it down on :meth:`RayBackend.close`; with ``address`` (``"auto"``,
``"ray://host:10001"`` or ``"host:6379"``) it connects to a running cluster, presenting the
cluster's token when Ray finds one (:func:`~occamlab.experiments._ray_connect.connect`: Ray's
token authentication, and one-line errors for an address where no cluster answers or that
refuses the token). When Ray is already
initialised in this process (a notebook, a test fixture) the backend uses that instance and leaves
it running. Each task asks for one CPU and runs with one thread per math library
(:data:`~occamlab.experiments.THREAD_ENV`, set through the task's runtime environment and again in
the task before it runs).

A worker runs exactly what a local pool worker runs, :func:`execute`, so the claims (``flock`` on
the store's lock files), skip-if-done, time limit (SIGALRM: Ray runs a task in its worker's main
thread) and atomic commit are the same. The store must therefore be a path every worker sees at
the same place: a local path on one machine, a shared file system on a cluster (where ``flock``
depends on the file system). Ray's own retries are off (``max_retries=0``): retries are the
sweep's. A worker that dies mid-run (``WorkerCrashedError``, ``NodeDiedError``) gives the run the
outcome ``failed`` with :data:`WORKER_DIED` (recorded in the store, an attempt charged), so the
sweep's retries apply and the sweep goes on; Ray replaces the worker.

Ray is imported only here and only when this backend is built.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from occamlab.errors import OccamError
from occamlab.store import RunStore

from ._execute import THREAD_ENV, WORKER_DIED, Outcome, Task, check_backend, execute
from ._ray_connect import connect

__all__ = ["RayBackend", "RayMissingError", "import_ray", "WORKER_DIED"]

INSTALL = "pip install 'occamlab[ray]'"
OBJECT_STORE_BYTES = 128 * 1024**2  # outcomes are tiny; don't reserve 30 % of RAM for Ray


class RayMissingError(OccamError):
    """``--backend ray`` was asked for but Ray is not installed."""


def import_ray() -> Any:
    """``import ray``, or a :class:`RayMissingError` naming the pip command."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissingError(f"the Ray backend needs Ray, which is not installed ({exc}); "
                              f"install it with: {INSTALL}") from None
    return ray


def _ray_execute(task: Task) -> Outcome:
    """What a Ray worker runs: one thread per math library, then the shared :func:`execute`,
    recording the Ray node it ran on (``ray_node_id`` in ``env.json``)."""
    os.environ.update(THREAD_ENV)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    import ray

    return execute(task, where={"ray_node_id": ray.get_runtime_context().get_node_id()})


class RayBackend:
    """Runs tasks as Ray tasks of one CPU each (see the module docstring).

    Parameters
    ----------
    jobs : int
        CPUs of the local Ray instance started when no ``address`` is given (``num_cpus``); with
        an address, only reported (the cluster decides how many tasks run at once).
    address : str, optional
        A running Ray cluster to connect to; ``None`` starts a local instance.
    """

    def __init__(self, jobs: int = 1, *, address: str | None = None) -> None:
        check_backend(jobs, "ray", address)
        ray = import_ray()
        self._ray = ray
        self.jobs = jobs
        self.address = address
        self._owns = not ray.is_initialized()
        self._restore: Callable[[], None] | None = None
        if self._owns:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING}
            if address is None:
                # Ray nices its workers to 15 by default: on a busy machine the runs then get a
                # fraction of a core (4.4x slower than the pool here); run them as the pool does
                kwargs.update(num_cpus=jobs, object_store_memory=OBJECT_STORE_BYTES,
                              _system_config={"worker_niceness": 0})
                try:
                    ray.init(**kwargs)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise OccamError(f"could not start a local Ray instance: {exc}") from None
            else:
                kwargs["address"] = address
                self._restore = connect(ray, address, lambda: ray.init(**kwargs))
        self._remote = ray.remote(num_cpus=1, max_retries=0,
                                  runtime_env={"env_vars": dict(THREAD_ENV)})(_ray_execute)
        self._died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                      ray.exceptions.LocalRayletDiedError)
        self._refs: dict[Any, None] = {}

    def submit(self, task: Task) -> cf.Future[Outcome]:
        task = dataclasses.replace(task, store=os.path.abspath(task.store))
        ref = self._remote.remote(task)
        self._refs[ref] = None
        out: cf.Future[Outcome] = cf.Future()

        def done(f: cf.Future[Any]) -> None:
            self._refs.pop(ref, None)
            if f.cancelled():
                out.cancel()
                out.set_running_or_notify_cancel()
                return
            exc = f.exception()
            if exc is None:
                out.set_result(f.result())
            elif isinstance(exc, self._died):
                try:
                    RunStore(task.store).record_failure(task.run_id, WORKER_DIED)
                    out.set_result(Outcome(task.run_id, "failed", WORKER_DIED))
                except Exception as err:  # the store is unreadable: an infrastructure error
                    out.set_exception(err)
            else:
                out.set_exception(exc)

        ref.future().add_done_callback(done)
        return out

    def close(self, *, cancel: bool = False) -> None:
        """Stop (``cancel``) or let finish the submitted tasks; shut down a Ray this started."""
        if cancel:  # interrupted: stop the workers now; their runs read as pending again
            for ref in list(self._refs):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished
                    pass
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        if self._restore is not None:
            self._restore()
            self._restore = None
