"""Logging a sweep's runs to MLflow (optional: ``pip install 'occamlab[mlflow]'``).

:class:`MlflowLogger` is called by :func:`~occamlab.experiments.run_sweep` (``on_outcome``) in the
sweep's own process with each run's final outcome, whatever backend executed it. It reads the run
back from the store and logs it as one MLflow run of the experiment ``occam:<experiment>``:

- params: the flattened config (``model.d_model``, ``steps``, ...), values as text;
- metrics: every numeric field of each ``metrics.jsonl`` line at its ``step`` (the line number
  when it has none), then the result's numeric fields (``best_val_loss``, ``n_params``, ...;
  a result key that is also a stream key is logged as ``result.<key>``);
- tags: ``occam.run_id``, ``occam.experiment``, ``occam.status``, ``occam.store``,
  ``occam.error``, ``occam.git_commit``; artifacts ``result.json`` and ``env.json``;
- status ``FINISHED`` for done runs, ``FAILED`` for failed ones.

Runs that were already done before the sweep (``skipped``) are logged once: only when the MLflow
experiment holds no run tagged with their id. The default tracking URI is a SQLite file
``STORE/mlflow.db`` when SQLAlchemy is installed, else a file store ``STORE/mlruns``. With a SQLite
URI, the experiments occamlab creates keep their artifacts in ``mlflow-artifacts`` beside the
database file (not in ``./mlruns`` of the current directory). MLflow is imported only when a
logger is built.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from occamlab.errors import OccamError
from occamlab.store import RunStore, flatten

from ._execute import Outcome

__all__ = ["MlflowLogger", "MlflowMissingError", "default_tracking_uri", "import_mlflow"]

INSTALL = "pip install 'occamlab[mlflow]'"
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000


class MlflowMissingError(OccamError):
    """``--mlflow`` was asked for but MLflow is not installed."""


def import_mlflow() -> Any:
    """``import mlflow``, or a :class:`MlflowMissingError` naming the pip command."""
    try:
        import mlflow
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError as exc:
        raise MlflowMissingError(f"--mlflow needs MLflow, which is not installed ({exc}); "
                                 f"install it with: {INSTALL}") from None
    return mlflow


def default_tracking_uri(store: RunStore) -> str:
    """``sqlite:///STORE/mlflow.db`` when SQLAlchemy and Alembic are installed, else
    ``file:STORE/mlruns``."""
    root = store.root.resolve()
    if all(importlib.util.find_spec(m) is not None for m in ("sqlalchemy", "alembic")):
        return f"sqlite:///{root / 'mlflow.db'}"
    return f"file:{root / 'mlruns'}"


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class MlflowLogger:
    """Logs runs of ``store`` to MLflow at ``uri`` (default :func:`default_tracking_uri`).

    Call it with an :class:`~occamlab.experiments.Outcome` (``run_sweep(on_outcome=logger)``).
    Logging errors are kept in :attr:`errors` (run id, message), never raised: a sweep does not
    stop because its tracking server is down.
    """

    def __init__(self, store: RunStore | str, uri: str | None = None) -> None:
        import_mlflow()
        from mlflow.tracking import MlflowClient

        self.store = store if isinstance(store, RunStore) else RunStore(store)
        default = uri is None
        self.uri = default_tracking_uri(self.store) if default else str(uri)
        if self.uri.startswith("file:") or "://" not in self.uri:
            # MLflow 3 refuses file stores unless asked; the user asked for one
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        # MLflow puts a SQLite store's artifacts in ./mlruns of the current directory unless
        # told otherwise: put them beside the database file instead
        self._artifacts = (str(Path(self.uri[len("sqlite:///"):]).resolve().parent
                               / "mlflow-artifacts")
                           if self.uri.startswith("sqlite:///") else None)
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
        except Exception as exc:
            raise OccamError(f"--mlflow: cannot open the tracking store {self.uri!r}: "
                             f"{type(exc).__name__}: {exc}") from None
        self._experiments: dict[str, str] = {}
        self._known: dict[str, set[str]] = {}
        self.logged: list[str] = []
        self.errors: list[tuple[str, str]] = []

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            exp = self.client.get_experiment_by_name(name)
            eid = (exp.experiment_id if exp is not None else
                   self.client.create_experiment(name, artifact_location=self._artifacts))
            self._experiments[name] = eid
            known: set[str] = set()
            token = None
            while True:
                page = self.client.search_runs([eid], max_results=1000, page_token=token)
                known.update(r.data.tags.get("occam.run_id", "") for r in page)
                token = page.token
                if not token:
                    break
            self._known[eid] = known
        return self._experiments[name]

    def __call__(self, outcome: Outcome) -> None:
        if outcome.status not in ("done", "failed", "skipped"):
            return
        try:
            self.log_run(outcome.run_id, only_new=outcome.status == "skipped")
        except Exception as exc:  # logging must not stop the sweep
            self.errors.append((outcome.run_id, f"{type(exc).__name__}: {exc}"))

    def log_run(self, rid: str, *, only_new: bool = False) -> str | None:
        """Log one stored run; returns the MLflow run id (``None`` if ``only_new`` and it is
        logged already, or the run is neither done nor failed)."""
        from mlflow.entities import Metric, Param

        rec = self.store.read(rid)
        if rec["status"] not in ("done", "failed"):
            return None
        eid = self._experiment(f"occam:{rec['experiment']}")
        if only_new and rid in self._known[eid]:
            return None
        env = rec.get("env") or {}
        tags = {"mlflow.runName": rid, "occam.run_id": rid, "occam.experiment": rec["experiment"],
                "occam.status": rec["status"], "occam.store": str(self.store.root.resolve())}
        if rec.get("error"):
            tags["occam.error"] = str(rec["error"])[:5000]
        if env.get("git_commit"):
            tags["occam.git_commit"] = str(env["git_commit"])
        run = self.client.create_run(eid, tags=tags)
        mid = run.info.run_id
        params = [Param(k, json.dumps(v) if not isinstance(v, str) else v)
                  for k, v in flatten(rec.get("config") or {}).items()]
        now = int(time.time() * 1000)
        metrics, stream_keys = [], set()
        path = self.store.path(rid) / "metrics.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for i, line in enumerate(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict):
                continue
            step = row.get("step", i)
            step = int(step) if _number(step) is not None else i
            for k, v in row.items():
                x = _number(v)
                if k != "step" and x is not None:
                    metrics.append(Metric(k, x, now, step))
                    stream_keys.add(k)
        for k, v in (rec.get("result") or {}).items():
            x = _number(v)
            if x is not None:
                metrics.append(Metric(f"result.{k}" if k in stream_keys else k, x, now, 0))
        for i in range(0, len(params), _PARAMS_PER_BATCH):
            self.client.log_batch(mid, params=params[i:i + _PARAMS_PER_BATCH])
        for i in range(0, len(metrics), _METRICS_PER_BATCH):
            self.client.log_batch(mid, metrics=metrics[i:i + _METRICS_PER_BATCH])
        for name in ("result.json", "env.json"):
            f = Path(self.store.path(rid)) / name
            if f.exists():
                self.client.log_artifact(mid, str(f))
        self.client.set_terminated(mid, "FINISHED" if rec["status"] == "done" else "FAILED")
        self._known[eid].add(rid)
        self.logged.append(rid)
        return mid
