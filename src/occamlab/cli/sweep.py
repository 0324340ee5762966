"""``occam sweep SPEC.toml``: run a sweep of experiments into a run store (resumable)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from occamlab.cli._common import add_json_option, parse_kv, write_json

EPILOG = """example:
  occam sweep configs/sweep-smoke.toml --jobs 2 --store sweep-smoke
  occam sweep configs/sweep-smoke.toml --dry-run              # print the plan, run nothing
  occam sweep configs/sweep-smoke.toml --set steps=20 --store quick
  occam sweep configs/sweep-smoke.toml --backend ray --jobs 2 --mlflow
  occam sweep configs/finetune-tinker.toml --dry-run          # token plan; no key needed
  TINKER_API_KEY=... occam sweep configs/finetune-tinker.toml --jobs 4 --prices prices.toml --yes
Runs already done in the store are skipped, so the same command resumes a stopped sweep.
--backend picks where runs execute; a fine-tuning spec's training_backend (local, tinker) picks
where models train. Then: occam runs ls --store DIR; occam report --store DIR --out DIR."""


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a sweep of experiments into a run store (resumable)",
                       description="Run every run of a sweep spec (TOML: experiment, [base], "
                       "[axes], [zip]) into a run store; finished runs are skipped.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base key (TOML value); on a grid axis, pin it to one value")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes (one torch thread each); 0 = run in this process")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where runs execute: local = a process pool on this machine; ray = Ray "
                   "tasks (a local Ray instance with --jobs CPUs, or the cluster at --address; "
                   "pip install 'occamlab[ray]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to connect to (auto, ray://HOST:10001, HOST:6379); "
                   "default: start a local Ray instance. A cluster with token authentication "
                   "takes its token from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                   "~/.ray/auth_token (never stored)")
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="log each finished run to MLflow (default URI: sqlite STORE/mlflow.db, "
                   "or a file store STORE/mlruns; pip install 'occamlab[mlflow]')")
    p.add_argument("--store", default="runs-store", metavar="DIR",
                   help="run store directory (default: runs-store)")
    p.add_argument("--retries", type=int, default=None, metavar="K",
                   help="re-run a failed run up to K times (default: the spec's retries, or 0)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="per-run time limit (default: the spec's time_limit, or none)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    p.add_argument("--yes", action="store_true",
                   help="start a sweep that trains on a paid service without asking")
    p.add_argument("--prices", default=None, metavar="FILE",
                   help="price table (TOML, per million tokens by base model) for the plan's "
                   "cost estimate and the ledger; kept in the store (default: the spec's prices)")
    p.add_argument("--max-clients", type=int, default=None, metavar="K",
                   help="at most K training clients open at once on the service, across the "
                   "store's processes (default: the spec's max_training_clients, or 4)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    add_json_option(p)
    p.set_defaults(func=run, output_folders=("store",))


def _progress_printer(enabled: bool) -> Any:
    if not enabled:
        return None
    tty = sys.stderr.isatty()

    def show(p: Any) -> None:
        if tty:
            sys.stderr.write("\r\033[K" + p.line())
        else:
            sys.stderr.write(p.line() + "\n")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from occamlab._render import text_table
    from occamlab.experiments import check_backend, load_spec, plan_table, run_sweep
    from occamlab.store import RunStore

    spec = load_spec(args.spec, parse_kv(args.set))
    runs = spec.resolve()
    retries = spec.retries if args.retries is None else args.retries
    limit = spec.time_limit if args.time_limit is None else args.time_limit
    check_backend(args.jobs, args.backend, args.address, retries=retries, time_limit=limit)
    if args.backend == "ray":
        from occamlab.experiments import import_ray

        import_ray()  # a missing Ray is an error before anything runs
    if args.mlflow is not None:
        from occamlab.experiments import import_mlflow

        import_mlflow()
    prices, plan = _plans(args, spec, runs)
    if args.dry_run:
        from pathlib import Path

        store = RunStore(args.store) if Path(args.store, "store.json").exists() else None
        # an experiment's own plan (tokens, cost) replaces the generic table: one row per run
        print(plan if plan is not None else text_table(plan_table(runs, store)))
        print(f"\n{len(runs)} runs; store {args.store}; backend {args.backend}; jobs {args.jobs}; "
              f"retries {retries}; time limit {limit or 'none'}. Nothing was run (--dry-run).")
        return 0
    if plan is not None and plan.remote:
        from occamlab.experiments import check_remote_ready, confirm_remote

        check_remote_ready()
        print(plan, file=sys.stderr)
        confirm_remote(plan, yes=args.yes, interactive=sys.stdin.isatty())
    _prepare_store(args, spec, prices)
    logger = None
    if args.mlflow is not None:
        from occamlab.experiments import MlflowLogger

        logger = MlflowLogger(RunStore(args.store), args.mlflow or None)
    show = _progress_printer(not args.no_progress)
    result = run_sweep(runs, args.store, jobs=args.jobs, backend=args.backend,
                       address=args.address, retries=retries, time_limit=limit,
                       progress=show, on_outcome=logger)
    if show is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    if logger is not None:
        sys.stderr.write(f"MLflow: logged {len(logger.logged)} runs to {logger.uri}\n")
        for rid, err in logger.errors[:10]:
            sys.stderr.write(f"MLflow: could not log run {rid}: {err}\n")
    if args.json != "-":
        print(result)
        _print_ledger(args.store, runs, prices)
    if args.json:
        write_json(result.to_dict(), args.json)
    return 1 if result.n_failed else 0


def _plans(args: argparse.Namespace, spec: Any, runs: Any) -> tuple[Any, Any]:
    """The price table (``--prices``, the spec's, the store's) and the experiment's plan."""
    from occamlab.errors import ConfigError
    from occamlab.experiments import resolve_prices, sweep_plan

    if args.max_clients is not None and args.max_clients < 1:
        raise ConfigError(f"--max-clients must be >= 1, got {args.max_clients}")
    prices = resolve_prices(args.prices, spec.prices, args.store)
    return prices, sweep_plan(spec.experiment, runs, prices)


def _prepare_store(args: argparse.Namespace, spec: Any, prices: Any) -> None:
    from occamlab.experiments import prepare_store
    from occamlab.store import RunStore

    limit = args.max_clients if args.max_clients is not None else spec.max_training_clients
    if limit is not None or prices is not None:
        prepare_store(RunStore(args.store), max_training_clients=limit, prices=prices)


def _print_ledger(store: str, runs: Any, prices: Any) -> None:
    """The ledger of this sweep's runs (tokens and cost), when its experiment keeps one."""
    from occamlab.experiments import ledger_summary
    from occamlab.store import RunStore

    st = RunStore(store)
    ids = set(st.ids())
    summary = ledger_summary([st.record(r.id) for r in runs if r.id in ids], prices)
    if summary.runs:
        print(f"\n{summary}")
