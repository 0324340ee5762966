"""Runs of a store as result values: one run (:class:`RunRecord`) and a listing (:class:`RunList`),
what ``occam runs show`` and ``occam runs ls`` print and write with ``--json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from occamlab._config import flatten
from occamlab._render import Rendered, Table

__all__ = ["RunRecord", "RunList"]


@dataclass(frozen=True)
class RunRecord(Rendered):
    """One run: its id, experiment, status (with the error of a failed run), the full config, the
    result (``None`` until done), the provenance and the folder that holds its files."""

    id: str
    experiment: str
    status: str
    error: str | None
    config: dict[str, Any] | None
    result: dict[str, Any] | None
    env: dict[str, Any] | None
    folder: str = ""

    @classmethod
    def from_record(cls, rec: dict[str, Any], folder: str = "") -> RunRecord:
        """From :meth:`RunStore.read`'s plain dict."""
        return cls(id=rec["id"], experiment=str(rec["experiment"]), status=rec["status"],
                   error=rec["error"], config=rec["config"], result=rec["result"],
                   env=rec["env"], folder=folder)

    def _tables(self) -> list[Table]:
        def rows(d: dict[str, Any] | None) -> list[list[Any]]:
            return [[k, v if not isinstance(v, list | dict) else json.dumps(v)]
                    for k, v in flatten(d or {}).items()]

        notes = [f"folder: {self.folder}"] if self.folder else []
        if self.error:
            notes.insert(0, f"error: {self.error}")
        out = [Table(f"Run {self.id} ({self.experiment}): {self.status}", ["key", "value"],
                     rows(self.config), notes)]
        if self.result is not None:
            out.append(Table("Result", ["key", "value"], rows(self.result)))
        if self.env is not None:
            keep = {k: self.env.get(k) for k in ("host", "time", "elapsed_s", "attempt",
                                                   "torch_threads", "python", "seed")}
            keep["git"] = (self.env.get("git") or {}).get("commit")
            out.append(Table("Provenance", ["key", "value"], rows(keep)))
        return out


@dataclass(frozen=True)
class RunList(Rendered):
    """The runs of a store (optionally those of one status), in id order."""

    store: str
    runs: tuple[RunRecord, ...] = field(default_factory=tuple)

    def varying(self) -> list[str]:
        """Dotted config keys whose value differs between the runs (the swept ones)."""
        flat = [flatten(r.config or {}) for r in self.runs]
        keys: list[str] = []
        for f in flat:
            keys.extend(k for k in f if k not in keys)
        return [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]

    def counts(self) -> dict[str, int]:
        """Runs per status (done, failed, pending, running; statuses with none left out)."""
        out = {s: sum(r.status == s for r in self.runs) for s in ("done", "failed", "pending",
                                                                  "running")}
        return {k: v for k, v in out.items() if v}

    def _tables(self) -> list[Table]:
        keys = self.varying()
        rows = []
        for r in self.runs:
            f = flatten(r.config or {})
            rows.append([r.id, r.experiment, r.status] + [f.get(k) for k in keys])
        note = ", ".join(f"{v} {k}" for k, v in self.counts().items())
        return [Table(f"{len(self.runs)} runs in {self.store}", ["id", "experiment", "status"]
                      + keys, rows, [note] if note else [])]
