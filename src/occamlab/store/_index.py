"""The index of a store: every run as one row of a pandas DataFrame, and its exports."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from occamlab._config import flatten as _flatten
from occamlab._io import atomic_write_bytes, atomic_write_text
from occamlab.errors import ConfigError

from ._store import RunStore

__all__ = ["load_index", "export_index", "flatten", "FORMATS"]

FORMATS = ("csv", "parquet", "json")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"d_model": 8}}`` -> ``{"model.d_model": 8}`` (lists kept as JSON text: one
    cell of the index)."""
    return _flatten(d, prefix, lists_as_json=True)


def load_index(store: RunStore | str | os.PathLike[str], *, status: str | None = None) -> Any:
    """All runs of a store as a DataFrame, one row per run.

    Columns: ``id, experiment, status, error``, then the flattened config as ``config.<key>``
    (e.g. ``config.model.d_model``), then the result's scalar keys unprefixed (e.g.
    ``best_val_loss``), then ``env.host``, ``env.git_commit``. ``status`` keeps only runs with
    that status.
    """
    import pandas as pd

    st = store if isinstance(store, RunStore) else RunStore(store)
    rows = []
    for rec in st.records():
        if status is not None and rec["status"] != status:
            continue
        row: dict[str, Any] = {k: rec[k] for k in ("id", "experiment", "status", "error")}
        row.update(flatten(rec["config"] or {}, "config."))
        row.update(flatten(rec["result"] or {}))
        env = rec["env"] or {}
        row["env.host"] = env.get("host")
        row["env.git_commit"] = (env.get("git") or {}).get("commit")
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["id", "experiment", "status", "error"])


def export_index(df: Any, dest: str | os.PathLike[str], *, format: str | None = None) -> str:
    """Write the index to ``dest`` as CSV, Parquet or JSON (records); returns the format used.

    The format comes from ``format`` or else the file suffix. Written atomically.
    """
    path = Path(dest)
    fmt = format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
                     ".json": "json"}.get(path.suffix.lower())
    if fmt not in FORMATS:
        got = f" (got {format!r})" if format is not None else ""
        raise ConfigError(f"cannot tell the export format of {str(path)!r} from its suffix; "
                          f"use --format {'|'.join(FORMATS)}{got}")
    if fmt == "csv":
        atomic_write_text(path, df.to_csv(index=False))
    elif fmt == "parquet":
        buf = io.BytesIO()
        try:
            df.to_parquet(buf, index=False)
        except ImportError:
            raise ConfigError("Parquet export needs pyarrow: pip install 'occamlab[parquet]'"
                              ) from None
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_text(path, df.to_json(orient="records", indent=1) + "\n")
    return fmt
