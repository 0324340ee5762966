"""``occam runs ls|show|export|retry``: look at, export and re-run the runs of a store."""

from __future__ import annotations

import argparse
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
    ls.add_argument("--prices", default=None, metavar="FILE",
                    help="price table (TOML) for the ledger's cost (default: the store's copy)")
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
    ex.set_defaults(func=_export, output_files=("out",))

    rt = acts.add_parser("retry", help="re-run failed runs (all, or the ids given)")
    rt.add_argument("ids", nargs="*", metavar="ID")
    store_opt(rt)
    rt.add_argument("--jobs", type=int, default=1, metavar="N")
    rt.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    rt.add_argument("--backend", choices=["local", "ray"], default="local",
                    help="where the runs execute (as for occam sweep)")
    rt.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster address (--backend ray)")
    add_json_option(rt)
    rt.set_defaults(func=_retry)


def _open(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from occamlab.errors import OccamError
    from occamlab.store import RunStore

    if not Path(args.store, "store.json").exists():
        raise OccamError(f"no run store at {args.store!r} (run `occam sweep ... --store DIR`)")
    return RunStore(args.store)


def _print(result: Any, args: argparse.Namespace) -> int:
    if args.json != "-":
        print(result)
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0


def _ls(args: argparse.Namespace) -> int:
    from occamlab.experiments import ledger_summary, resolve_prices

    store = _open(args)
    runs = store.run_list(status=args.status)
    _print(runs, args)
    ledger = ledger_summary(runs.runs, resolve_prices(args.prices, None, store.root))
    if ledger.runs and args.json != "-":
        print(f"\n{ledger}")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = _open(args)
    return _print(store.record(store.resolve(args.id)), args)


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

    check_backend(args.jobs, args.backend, args.address, time_limit=args.time_limit)
    store = _open(args)
    ids = [store.resolve(i) for i in args.ids] or [
        r for r in store.ids() if (store.status(r) or ("",))[0] == "failed"]
    if not ids:
        from occamlab.experiments import SweepResult

        print(f"no failed runs in {store.root}", file=sys.stderr)
        return _print(SweepResult(store=str(store.root), n_runs=0, n_done=0, n_skipped=0,
                                  n_failed=0, n_retries=0, elapsed_s=0.0, jobs=args.jobs), args)
    runs = []
    for rid in ids:  # the whole request is checked before any run's state changes
        rec = store.read(rid)
        if rec["status"] == "running":
            raise OccamError(f"run {rid} is running now; retry it when it has finished")
        runs.append(PlannedRun(rid, rec["experiment"], rec["config"], {}))
    for run in runs:
        store.mark_pending(run.id)
    result = run_sweep(runs, store, jobs=args.jobs, time_limit=args.time_limit, backend=args.backend,
                       address=args.address)
    _print(result, args)
    return 1 if result.n_failed else 0
