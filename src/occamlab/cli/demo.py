"""``occam demo``: run the seed's experiments and write one page (``occam report`` rebuilds it)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from occamlab.cli._common import add_json_option, write_json

EPILOG = """examples:
  occam demo                                   # quick size: every experiment, about 10 minutes
  occam demo --size full --jobs 2              # sized for the fits (hours)
  occam demo --only chinchilla --out demo-out  # one experiment
  occam demo --backend ray --address 127.0.0.1:6379 --store /shared/demo-store
  occam report --store demo-out/store --out demo-out   # rebuild the page, train nothing
A second call with the same store re-runs nothing that finished; Ctrl-C loses only the runs in
flight. The page is OUT/index.html, the numbers OUT/results.json."""


def _common(p: argparse.ArgumentParser) -> None:
    add_json_option(p)


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the seed's experiments and write their report",
                       description="Run the seed's experiments (each a sweep of runs into a "
                       "resumable store, then an analysis of the stored runs) and write one "
                       "HTML page and results.json.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=["quick", "full"], default="quick",
                   help="quick: minutes on two cores; full: sized so the fits mean something")
    p.add_argument("--out", default="demo-out", metavar="DIR",
                   help="where index.html and results.json go (default: demo-out)")
    p.add_argument("--store", default=None, metavar="DIR", help="run store (default: OUT/store)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="runs at once (worker processes, one thread each; default 2)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where runs execute (as for occam sweep)")
    p.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster (--backend ray)")
    p.add_argument("--only", action="append", default=None, metavar="NAME,...",
                   help="these experiments only (comma-separated, or --only repeated)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    _common(p)
    p.set_defaults(func=_demo, output_folders=("out", "store"))


def _progress(enabled: bool) -> Any:
    """A progress printer: one updated line on a terminal; otherwise a line when a run finishes
    (or every 30 s), so a log stays readable."""
    if not enabled:
        return None
    import time

    tty = sys.stderr.isatty()
    last: dict[str, Any] = {"key": None, "t": 0.0}

    def show(p: Any) -> None:
        key = (p.experiment, p.stage, p.done, p.sweep.failed if p.sweep else 0)
        now = time.monotonic()
        if tty:
            sys.stderr.write("\r\033[K" + p.line())
        elif key != last["key"] or now - last["t"] >= 30:
            sys.stderr.write(p.line() + "\n")
        else:
            return
        last.update(key=key, t=now)
        sys.stderr.flush()

    return show


def finish(res: Any, args: argparse.Namespace) -> int:
    if args.json:
        write_json(res.to_dict(), args.json)
    if args.json != "-":
        print(res)
    for name in res.failed:
        print(f"occam {args.command}: experiment {name} failed (its section says why)",
              file=sys.stderr)
    return 1 if res.failed else 0


def _demo(args: argparse.Namespace) -> int:
    from occamlab.experiments import run_demo

    show = _progress(not args.no_progress)
    only = ",".join(args.only) if args.only is not None else None
    res = run_demo(only, size=args.size, out=args.out, store=args.store, jobs=args.jobs,
                   backend=args.backend, address=args.address, progress=show)
    if show is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    return finish(res, args)
