"""A run store on disk: one folder per run, written atomically, claimed by one process at a time.

Layout of a store ``DIR``::

    DIR/store.json                  {"format": "occamlab.store", "version": 1}
    DIR/runs/<run_id>/config.json   {"experiment": NAME, "config": {...}} (canonical, sorted keys)
    DIR/runs/<run_id>/metrics.jsonl one JSON object per line, written by the experiment
    DIR/runs/<run_id>/result.json   the experiment's result (plain JSON), present when done
    DIR/runs/<run_id>/env.json      provenance: git commit, versions, threads, seed, host, python
    DIR/runs/<run_id>/status        "pending" | "running" | "done" | "failed" (+ the error text)
    DIR/locks/<run_id>.lock         advisory lock (flock) held by the process executing the run
    DIR/states/<run_id>/            what a run keeps across attempts (resume point, ledger)

``run_id`` is the first 16 hex digits of the SHA-256 of the canonical JSON of
``{"experiment": NAME, "config": CONFIG}`` (sorted keys, no spaces), so the same config is the
same run in every sweep. A run executes in a temporary folder ``runs/.tmp-<id>-<nonce>``; when it
ends its result, provenance and (last) its status are written there and the folder replaces
``runs/<id>`` by renames. A process killed part-way leaves only a temporary folder, which
:meth:`RunStore.clean` removes; readers never see half a run. The lock is an ``flock`` on a file,
which the kernel releases when its holder dies, so a crashed run never blocks its retry (on a
local file system; NFS locks depend on the server).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from occamlab._io import atomic_write_text
from occamlab.errors import DataError, OccamError

from ._records import RunList, RunRecord

__all__ = ["RunStore", "StoreVersionError", "run_id", "canonical_json", "STATUSES",
           "STORE_FORMAT", "STORE_VERSION"]

STORE_FORMAT = "occamlab.store"
STORE_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")


class StoreVersionError(DataError):
    """The store was written by another store-format version (or is not a store)."""


def canonical_json(obj: Any) -> str:
    """Sorted-key, compact JSON: the form that is hashed into a run id."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_id(experiment: str, config: dict[str, Any]) -> str:
    """``sha256(canonical_json({"experiment": ..., "config": ...}))[:16]``."""
    text = canonical_json({"experiment": experiment, "config": config})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write(path: Path, text: str) -> None:
    """Write a file through a temporary name and a rename (never half a file); not fsynced: a run
    folder is committed as a whole by renames, and a lost status after a power cut reads pending."""
    atomic_write_text(path, text, fsync=False)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


class Claim:
    """An exclusive claim on one run (an ``flock``); release it with :meth:`release`."""

    def __init__(self, fd: int, run: str) -> None:
        self.fd, self.run_id = fd, run

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class RunStore:
    """A directory of runs (see the module docstring for the layout).

    Parameters
    ----------
    root : path
        The store directory; created (with its version file) when missing or empty.

    Raises
    ------
    StoreVersionError
        ``root`` holds files but no ``store.json``, or a ``store.json`` of another version.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.locks_dir = self.root / "locks"
        meta = self.root / "store.json"
        if self.root.exists() and not self.root.is_dir():
            raise StoreVersionError(f"store {str(self.root)!r} is a file, not a directory")
        info = _read_json(meta) if meta.exists() else None
        if info is None:
            # another process creating the same store leaves a temporary store.json, then
            # store.json, then runs/ and locks/: none of that makes the directory foreign
            foreign = self.root.exists() and any(
                p.name != "store.json" and not p.name.startswith(".store.json.")
                for p in self.root.iterdir())
            if foreign:
                info = _read_json(meta)  # written by that other process since the first look
                if info is None:
                    raise StoreVersionError(
                        f"{str(self.root)!r} is not an occamlab run store (no store.json); "
                        "choose an empty or new directory for --store")
            else:
                self.root.mkdir(parents=True, exist_ok=True)
                _write(meta, json.dumps({"format": STORE_FORMAT, "version": STORE_VERSION}) + "\n")
                info = {"format": STORE_FORMAT, "version": STORE_VERSION}
        if not isinstance(info, dict) or info.get("format") != STORE_FORMAT:
            raise StoreVersionError(f"{meta}: not an occamlab store version file")
        elif info.get("version") != STORE_VERSION:
            raise StoreVersionError(
                f"store {str(self.root)!r} was written with store format version "
                f"{info.get('version')!r}; this occamlab reads version {STORE_VERSION} only "
                "(use a new --store directory, or the occamlab version that wrote it)")
        self.runs_dir.mkdir(exist_ok=True)
        self.locks_dir.mkdir(exist_ok=True)

    # ---- reading -------------------------------------------------------------------------
    def path(self, run: str) -> Path:
        return self.runs_dir / run

    def state_dir(self, run: str) -> Path:
        """``STORE/states/<run_id>/``: what a run keeps across kills and retries (its resume point,
        its token ledger, saved training states). It lies outside the run's atomic folder, so a
        killed or failed attempt leaves it for the next one."""
        path = self.root / "states" / run
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ids(self) -> list[str]:
        """Ids of the runs recorded in the store (temporary folders excluded), sorted."""
        return sorted(p.name for p in self.runs_dir.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def resolve(self, prefix: str) -> str:
        """The one run id that starts with ``prefix``."""
        hits = [r for r in self.ids() if r.startswith(prefix)]
        if len(hits) != 1:
            what = "no run" if not hits else f"{len(hits)} runs"
            raise OccamError(f"{what} in {self.root} with an id starting {prefix!r}")
        return hits[0]

    def raw_status(self, run: str) -> str | None:
        """The status word as written (no lock check), or ``None`` when the run is absent."""
        try:
            return (self.path(run) / "status").read_text(encoding="utf-8").partition("\n")[0]
        except FileNotFoundError:
            return None

    def status(self, run: str) -> tuple[str, str | None] | None:
        """``(status, error)`` of a run, or ``None`` if the store does not hold it.

        A run marked running whose lock nobody holds was interrupted: it reads as pending.
        """
        try:
            text = (self.path(run) / "status").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        word, _, rest = text.partition("\n")
        word = word.strip()
        if word not in STATUSES:
            raise DataError(f"{self.path(run) / 'status'}: unknown status {word!r}")
        if word == "running" and not self.is_claimed(run):
            return "pending", None
        return word, (rest.strip() or None) if word == "failed" else None

    def read(self, run: str) -> dict[str, Any]:
        """A run as plain JSON: id, experiment, status, error, config, result, env."""
        folder = self.path(run)
        cfg = _read_json(folder / "config.json")
        if cfg is None:
            raise OccamError(f"no run {run!r} in {self.root}")
        st = self.status(run) or ("pending", None)
        return {"id": run, "experiment": cfg.get("experiment"), "status": st[0], "error": st[1],
                "config": cfg.get("config"), "result": _read_json(folder / "result.json"),
                "env": _read_json(folder / "env.json")}

    def record(self, run: str) -> RunRecord:
        """One run as a result value (see :meth:`read`)."""
        return RunRecord.from_record(self.read(run), folder=str(self.path(run)))

    def run_list(self, *, status: str | None = None) -> RunList:
        """Every run (or those with ``status``) as a result value."""
        if status is not None and status not in STATUSES:
            raise OccamError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
        return RunList(str(self.root), tuple(
            RunRecord.from_record(r, folder=str(self.path(r["id"]))) for r in self.records()
            if status is None or r["status"] == status))

    def records(self) -> list[dict[str, Any]]:
        """Every run (see :meth:`read`); a run being swapped into place is read once it is."""
        out = []
        for r in self.ids():
            for attempt in range(20):
                try:
                    out.append(self.read(r))
                    break
                except OccamError:
                    if attempt == 19 or self.path(r).exists():
                        raise
                    time.sleep(0.01)  # between the two renames of a commit
        return out

    # ---- writing -------------------------------------------------------------------------
    def register(self, experiment: str, config: dict[str, Any]) -> str:
        """Record a run as pending unless the store already holds it; returns its id."""
        rid = run_id(experiment, config)
        if not self.path(rid).exists():
            tmp = self.runs_dir / f".reg-{rid}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            _write(tmp / "config.json", json.dumps(
                {"experiment": experiment, "config": config}, sort_keys=True, indent=1) + "\n")
            _write(tmp / "status", "pending\n")
            try:
                os.rename(tmp, self.path(rid))
            except OSError as exc:  # another sweep registered it first
                shutil.rmtree(tmp, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        return rid

    def claim(self, run: str, *, wait: bool = False) -> Claim | None:
        """Take the run's lock; ``None`` if another process holds it (and ``wait`` is false)."""
        fd = os.open(self.locks_dir / f"{run}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return Claim(fd, run)

    def is_claimed(self, run: str) -> bool:
        c = self.claim(run)
        if c is None:
            return True
        c.release()
        return False

    def begin(self, claim: Claim) -> Path:
        """Mark the claimed run running and return a fresh temporary folder to run it in."""
        rid = claim.run_id
        final = self.path(rid)
        cfg = (final / "config.json").read_text(encoding="utf-8")
        _write(final / "status", f"running\npid {os.getpid()}\n")
        tmp = self.runs_dir / f".tmp-{rid}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        (tmp / "config.json").write_text(cfg, encoding="utf-8")
        (tmp / "metrics.jsonl").touch()
        return tmp

    def finish(self, claim: Claim, tmp: Path, *, env: dict[str, Any],
               result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Write result (or error), provenance and status into ``tmp``, then swap it into place."""
        if (result is None) == (error is None):
            raise ValueError("finish() takes exactly one of result and error")
        _write(tmp / "env.json", json.dumps(env, indent=1, sort_keys=True, default=str) + "\n")
        if result is not None:
            _write(tmp / "result.json", json.dumps(result, indent=1, allow_nan=True) + "\n")
            _write(tmp / "status", "done\n")
        else:
            _write(tmp / "status", f"failed\n{error}\n")
        self._swap(claim.run_id, tmp)

    def _swap(self, rid: str, tmp: Path) -> None:
        final = self.path(rid)
        trash = self.runs_dir / f".trash-{rid}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)

    def record_failure(self, run: str, error: str, *, timeout: float = 5.0) -> bool:
        """Mark a run failed from outside (its process died); only once nobody holds it (waiting
        up to ``timeout`` seconds) and if it is not done. Returns whether it was marked."""
        deadline = time.monotonic() + timeout
        c = self.claim(run)
        while c is None and time.monotonic() < deadline:  # a dying process lets go shortly
            time.sleep(0.02)
            c = self.claim(run)
        if c is None:
            return False
        try:
            if self.raw_status(run) in (None, "done"):
                return False
            _write(self.path(run) / "status", f"failed\n{error}\n")
            return True
        finally:
            c.release()

    def mark_pending(self, run: str) -> None:
        """Reset a failed run to pending (``occam runs retry``)."""
        _write(self.path(run) / "status", "pending\n")

    def clean(self) -> list[str]:
        """Remove what killed runs left behind; returns the names removed.

        A temporary folder whose run nobody holds is deleted, unless the run folder is missing
        and the temporary one is complete (status written): then it is moved into place. A
        registration folder (``.reg-``, written without a claim) is deleted once it is a minute
        old: registering takes milliseconds.
        """
        removed = []
        now = time.time()
        for p in sorted(self.runs_dir.iterdir()):
            if p.name.startswith(".reg-"):
                with contextlib.suppress(FileNotFoundError):
                    if now - p.stat().st_mtime > 60:
                        shutil.rmtree(p, ignore_errors=True)
                        removed.append(p.name)
                continue
            if not p.name.startswith((".tmp-", ".trash-")) or not p.is_dir():
                continue
            rid = p.name.split("-")[1]
            c = self.claim(rid)
            if c is None:
                continue
            try:
                complete = (p / "status").exists() and (p / "config.json").exists()
                if p.name.startswith(".tmp-") and complete and not self.path(rid).exists():
                    os.rename(p, self.path(rid))
                else:
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
            finally:
                c.release()
        return removed

    @contextlib.contextmanager
    def claimed(self, run: str, *, wait: bool = False) -> Iterator[Claim | None]:
        c = self.claim(run, wait=wait)
        try:
            yield c
        finally:
            if c is not None:
                c.release()
