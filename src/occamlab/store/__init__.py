"""Runs on disk: one atomically written folder per run, an index as a DataFrame, provenance.

The store knows none of occamlab's libraries: JSON in, JSON out (see docs/experiments.md)::

    from occamlab.store import RunStore, load_index
    store = RunStore("runs-store")
    df = load_index(store)          # one row per run: config.*, result columns, status
"""

from ._index import FORMATS, export_index, flatten, load_index
from ._provenance import git_commit, provenance
from ._records import RunList, RunRecord
from ._store import (
    STATUSES,
    STORE_FORMAT,
    STORE_VERSION,
    Claim,
    RunStore,
    StoreVersionError,
    canonical_json,
    run_id,
)

__all__ = [
    "Claim",
    "FORMATS",
    "RunList",
    "RunRecord",
    "RunStore",
    "STATUSES",
    "STORE_FORMAT",
    "STORE_VERSION",
    "StoreVersionError",
    "canonical_json",
    "export_index",
    "flatten",
    "git_commit",
    "load_index",
    "provenance",
    "run_id",
]
