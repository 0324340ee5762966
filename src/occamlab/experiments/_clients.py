"""Training clients for runs: which backend, how many at once, and what survives a kill.

- :class:`RunState`: ``STORE/states/<run_id>/`` (outside the run's atomic folder), where a run
  records its last saved training state (``resume.json``: step, the state's path, the losses so
  far) and its token ledger (``ledger.json``, rewritten after every step), so a run killed
  mid-training resumes from that state, optimizer included, and its ledger still counts the
  steps it trained twice.
- :class:`ClientSlots`: at most ``max_training_clients`` training clients open at once across
  every process of a store (the Tinker service limits concurrent LoRA clients per account): one
  ``flock`` per slot under ``STORE/locks/clients/``; a run waits, queued, for a free slot.
  The limit is a store setting (``STORE/service.json``), written by ``occam sweep``.
- :func:`open_client`: the protocol's implementation for ``training_backend``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from occamlab._io import atomic_write_json
from occamlab.errors import ConfigError, DataError
from occamlab.store import RunStore

from ._refs import store_of

__all__ = ["RunState", "ClientSlots", "SERVICE_FILE", "read_service_settings",
           "write_service_settings", "backoff", "DEFAULT_MAX_CLIENTS"]

SERVICE_FILE = "service.json"
DEFAULT_MAX_CLIENTS = 4


def _run_id(folder: Path) -> str:
    """The run id of a run folder: ``<id>`` or the temporary ``.tmp-<id>-<nonce>``."""
    name = folder.name
    return name.split("-")[1] if name.startswith(".tmp-") else name


class RunState:
    """The durable state of one run (see the module docstring); outside a store it lives in the
    run folder itself (``RUN/states/``)."""

    def __init__(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        root = store_of(run_dir)
        self.store = root
        self.run_id = _run_id(run_dir.resolve())
        if root is None:
            self.dir = run_dir / "states"
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self.dir = RunStore(root).state_dir(self.run_id)

    def _read(self, name: str) -> dict[str, Any] | None:
        p = self.dir / name
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise DataError(f"{p}: not valid JSON ({exc}); delete it to start the run "
                            "afresh") from None
        return doc if isinstance(doc, dict) else None

    def resume_point(self) -> dict[str, Any] | None:
        """``{"step", "path", "backend", "losses", ...}`` of the last saved state, if any."""
        return self._read("resume.json")

    def record_resume_point(self, point: dict[str, Any]) -> None:
        atomic_write_json(self.dir / "resume.json", point, fsync=True)

    def ledger(self) -> dict[str, Any]:
        return self._read("ledger.json") or {}

    def record_ledger(self, ledger: dict[str, Any]) -> None:
        atomic_write_json(self.dir / "ledger.json", ledger, fsync=False)


def read_service_settings(root: str | Path | None) -> dict[str, Any]:
    """The store's service settings (``max_training_clients``), ``{}`` when none were given."""
    if root is None:
        return {}
    p = Path(root) / SERVICE_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    return doc if isinstance(doc, dict) else {}


def write_service_settings(root: str | Path, *, max_training_clients: int) -> None:
    """Record the store's limit of concurrent training clients (what ``occam sweep`` does)."""
    if (isinstance(max_training_clients, bool) or not isinstance(max_training_clients, int)
            or max_training_clients < 1):
        raise ConfigError(f"max_training_clients must be a positive integer, got "
                          f"{max_training_clients!r}")
    doc = {**read_service_settings(root), "max_training_clients": max_training_clients}
    atomic_write_json(Path(root) / SERVICE_FILE, doc)


class ClientSlots:
    """``limit`` slots, each an ``flock`` on ``folder/slot-<i>.lock``; :meth:`hold` waits for
    one (polling every ``poll`` seconds) and keeps it for the block."""

    def __init__(self, folder: str | Path, limit: int, *, poll: float = 0.25) -> None:
        self.folder, self.limit, self.poll = Path(folder), int(limit), poll
        self.folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_run(cls, state: RunState) -> ClientSlots | None:
        """The store's slots (its ``max_training_clients``, default 4); none outside a store."""
        if state.store is None:
            return None
        limit = read_service_settings(state.store).get("max_training_clients",
                                                       DEFAULT_MAX_CLIENTS)
        return cls(state.store / "locks" / "clients", int(limit))

    def _try(self) -> int | None:
        for i in range(self.limit):
            fd = os.open(self.folder / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    @contextlib.contextmanager
    def hold(self) -> Iterator[float]:
        """Hold a slot for the block; yields the seconds spent waiting in the queue."""
        t0 = time.monotonic()
        fd = self._try()
        while fd is None:
            time.sleep(self.poll)
            fd = self._try()
        try:
            yield time.monotonic() - t0
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def backoff(attempt: int, *, base: float = 2.0, cap: float = 60.0) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): ``min(cap, base 2^(attempt-1))``."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))
