"""``occam runs ls|show|export|retry``: look at, export and re-run the runs of a store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from occamlab.cli._common import add_json_option, write_json

EPILOG = """examples:
  occam runs ls --store sweep-smoke [--status failed] [--json runs.json]
  occam runs show 1a2b --store sweep-smoke           # an id prefix is enough
  occam runs export runs.csv --store sweep-smoke     # or .parquet / .json, or --format
  occam runs retry --store sweep-smoke --jobs 2      # re-run the failed runs
  occam fit chinchilla runs.csv --n n_params_non_embedding --d tokens_seen --loss best_val_loss"""


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="list, show, export and retry the runs of a run store",
                       description="Inspect a run store written by `occam sweep`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def store_opt(q: Any) -> None:
        q.add_argument("--store", default="runs-store", metavar="DIR",
                       help="run store directory (default: runs-store)")

    ls = acts.add_parser("ls", help="one line per run (id, status, swept values)")
    store_opt(ls)
    ls.add_argument("--status", choices=["pending", "running", "done", "failed"])
    add_json_option(ls)
    ls.set_defaults(func=_ls)

    sh = acts.add_parser("show", help="a run's status, config, result and provenance")
    sh.add_argument("id", help="run id or a unique prefix")
    store_opt(sh)
    add_json_option(sh)
    sh.set_defaults(func=_show)

    ex = acts.add_parser("export", help="the index (one row per run) as CSV, Parquet or JSON")
    ex.add_argument("out", metavar="OUT", help="file to write ('-' = CSV/JSON to standard output)")
    store_opt(ex)
    ex.add_argument("--format", choices=["csv", "parquet", "json"], default=None,
                    help="default: from OUT's suffix")
    ex.add_argument("--status", choices=["pending", "running", "done", "failed"],
                    help="only runs with this status")
    ex.set_defaults(func=_export)

    rt = acts.add_parser("retry", help="re-run failed runs (all, or the ids given)")
    rt.add_argument("ids", nargs="*", metavar="ID")
    store_opt(rt)
    rt.add_argument("--jobs", type=int, default=1, metavar="N")
    rt.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    rt.add_argument("--backend", choices=["local", "ray"], default="local",
                    help="where the runs execute (as for occam sweep)")
    rt.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster address (--backend ray)")
    rt.set_defaults(func=_retry)


def _open(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from occamlab.errors import OccamError
    from occamlab.store import RunStore

    if not Path(args.store, "store.json").exists():
        raise OccamError(f"no run store at {args.store!r} (run `occam sweep ... --store DIR`)")
    return RunStore(args.store)


def _varying(records: list[dict[str, Any]]) -> list[str]:
    from occamlab.store import flatten

    flat = [flatten(r["config"] or {}) for r in records]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    return [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]


def _ls(args: argparse.Namespace) -> int:
    from occamlab._render import Table, text_table
    from occamlab.store import flatten

    store = _open(args)
    recs = [r for r in store.records() if args.status is None or r["status"] == args.status]
    if args.json:
        write_json([{"id": r["id"], "status": r["status"], "experiment": r["experiment"],
                     "config": r["config"], "error": r["error"], "result": r["result"]}
                    for r in recs], args.json)
        if args.json == "-":
            return 0
    keys = _varying(recs)
    rows = []
    for r in recs:
        f = flatten(r["config"] or {})
        rows.append([r["id"], r["experiment"], r["status"]] + [f.get(k) for k in keys])
    counts = {s: sum(r["status"] == s for r in recs) for s in ("done", "failed", "pending",
                                                               "running")}
    note = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    print(text_table(Table(f"{len(recs)} runs in {store.root}", ["id", "experiment", "status"]
                           + keys, rows, [note] if note else [])))
    return 0


def _show(args: argparse.Namespace) -> int:
    store = _open(args)
    rec = store.read(store.resolve(args.id))
    if args.json:
        write_json(rec, args.json)
        if args.json == "-":
            return 0
    print(f"run {rec['id']} ({rec['experiment']}): {rec['status']}")
    if rec["error"]:
        print(f"error: {rec['error']}")
    for k in ("config", "result", "env"):
        if rec[k] is not None:
            print(f"\n{k}:\n{json.dumps(rec[k], indent=2, sort_keys=True)}")
    print(f"\nfolder: {store.path(rec['id'])}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from occamlab.errors import ConfigError
    from occamlab.store import export_index, load_index

    df = load_index(_open(args), status=args.status)
    if args.out == "-":
        fmt = args.format or "csv"
        if fmt == "parquet":
            raise ConfigError("Parquet cannot go to standard output; give a file name")
        sys.stdout.write(df.to_csv(index=False) if fmt == "csv"
                         else df.to_json(orient="records", indent=1) + "\n")
        return 0
    fmt = export_index(df, args.out, format=args.format)
    print(f"wrote {len(df)} runs x {len(df.columns)} columns to {args.out} ({fmt})")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from occamlab.errors import OccamError
    from occamlab.experiments import PlannedRun, check_backend, run_sweep

    check_backend(args.jobs, args.backend, args.address)
    store = _open(args)
    ids = [store.resolve(i) for i in args.ids] or [
        r for r in store.ids() if (store.status(r) or ("",))[0] == "failed"]
    if not ids:
        print(f"no failed runs in {store.root}")
        return 0
    runs = []
    for rid in ids:
        rec = store.read(rid)
        if rec["status"] == "running":
            raise OccamError(f"run {rid} is running now; retry it when it has finished")
        runs.append(PlannedRun(rid, rec["experiment"], rec["config"], {}))
        store.mark_pending(rid)
    result = run_sweep(runs, store, jobs=args.jobs, time_limit=args.time_limit, backend=args.backend,
                       address=args.address)
    print(result)
    return 1 if result.n_failed else 0
