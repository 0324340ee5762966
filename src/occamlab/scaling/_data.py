"""Reading measurement tables and checking them before a fit.

Errors name the file, the column or the rows at fault, and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from occamlab.errors import DataError, suggest

__all__ = ["read_table", "column", "check_values", "data_rows"]

_READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
            ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


def read_table(path: str | Path) -> Any:
    """Read a CSV, TSV, Parquet, JSON-lines or JSON (list of records) file into a pandas DataFrame."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a data file (CSV, Parquet or JSON lines)")
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; allowed: {sorted(_READERS)}")
    if kind != "parquet":
        _check_text(path, kind)
    try:
        if kind == "csv":
            df = pd.read_csv(path)
        elif kind == "tsv":
            df = pd.read_csv(path, sep="\t")
        elif kind == "parquet":
            df = pd.read_parquet(path)
        elif kind == "jsonl":
            df = pd.read_json(path, lines=True)
        else:
            df = pd.read_json(path)
    except ImportError as exc:
        raise DataError(f"{path}: reading {kind} needs an optional package ({exc}); "
                        "install occamlab[parquet]") from exc
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        if isinstance(exc, pd.errors.EmptyDataError):
            raise DataError(f"{path}: the file is empty") from exc
        raise DataError(f"{path}: cannot read as {kind}: {exc}") from exc
    if len(df) == 0:
        raise DataError(f"{path}: the table has no rows")
    return df


def _check_text(path: Path, kind: str) -> None:
    """A text table must be text: NUL bytes or bytes that are not UTF-8 are a clear error (not a
    parser's complaint about field counts)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise DataError(f"{path}: not a text file (byte {exc.start} is not UTF-8); "
                            f"a .{kind} table must be UTF-8 text") from None
    if b"\x00" in head:
        raise DataError(f"{path}: not a text file (it holds NUL bytes); a .{kind} table must be "
                        "UTF-8 text")


def column(df: Any, name: str, *, source: str = "data", role: str = "") -> np.ndarray:
    """Column ``name`` of a DataFrame or mapping as a float array, with the fitters' error messages.

    Parameters
    ----------
    df : pandas.DataFrame or mapping of array-likes
    name : str
        The column.
    source : str
        Name of the data in error messages (a file name, say).
    role : str
        What the column is for, named in the error message ("model size", say).

    Returns
    -------
    numpy.ndarray
        The values as float64, shape ``(rows,)`` (possibly a view of ``df``'s data: copy before writing).

    Raises
    ------
    DataError
        The column is missing (the message lists the columns and suggests the nearest name) or
        not numeric.

    >>> column({"N": [1, 2]}, "N").tolist()
    [1.0, 2.0]
    """
    cols = list(df.columns) if hasattr(df, "columns") else list(df)
    if name not in cols:
        what = f" ({role})" if role else ""
        raise DataError(
            f"{source}: no column {name!r}{what}{suggest(name, [str(c) for c in cols])}; "
            f"columns are {cols}"
        )
    try:
        return np.asarray(df[name], dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: column {name!r} is not numeric ({exc})") from exc


def data_rows(mask: np.ndarray, offset: int = 1) -> str:
    """The rows where ``mask`` holds, numbered from ``offset`` (1: the first row after a
    table's header), at most ten shown."""
    idx = np.flatnonzero(mask) + offset
    shown = ", ".join(str(i) for i in idx[:10])
    return shown + (f", ... ({len(idx)} rows)" if len(idx) > 10 else "")


def check_values(
    arrays: Mapping[str, np.ndarray],
    *,
    positive: Sequence[str] = (),
    source: str = "data",
    min_rows: int = 1,
    row_offset: int = 1,
) -> None:
    """Raise :class:`DataError` for non-finite values, non-positive values where logs are taken,
    constant columns, or fewer rows than ``min_rows``. Row numbers count data rows from
    ``row_offset`` (default 1: the first row after a table's header is row 1)."""
    n = None
    for name, a in arrays.items():
        if n is None:
            n = len(a)
        bad = ~np.isfinite(a)
        if bad.any():
            raise DataError(f"{source}: column {name!r} has missing or non-finite values in "
                            f"data rows {data_rows(bad, row_offset)}")
        if name in positive and (a <= 0).any():
            raise DataError(f"{source}: column {name!r} must be > 0 (logarithms are taken); "
                            f"data rows {data_rows(a <= 0, row_offset)} are not")
    if n is not None and n < min_rows:
        raise DataError(f"{source}: {n} rows, but the fit has {min_rows - 1} free parameters "
                        f"and needs at least {min_rows} points")
    for name, a in arrays.items():
        if len(a) > 1 and np.ptp(a) == 0:
            raise DataError(f"{source}: column {name!r} is constant ({a[0]:g}); "
                            "a law cannot be fitted against it")
