"""The ``occam`` command line: parse arguments, build a config, call library code; nothing else.

Subcommands live in one small module each and are imported only when used, so ``occam --help``
answers at once. A user mistake (:class:`occamlab.errors.OccamError`), a path that cannot be read or written
(``OSError``) or a request beyond memory prints one line and exits with code 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from occamlab import __version__
from occamlab.errors import OccamError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help). Each module defines ``register(subparsers)``, which adds its
# parser and sets ``func`` (a callable taking the parsed namespace and returning an exit code).
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("occamlab.cli.fit", "fit a scaling law (chinchilla, isoflop, power-law, transfer, ...)"),
    "demo": ("occamlab.cli.demo", "run the seed's experiments and write their report (one page)"),
    "report": ("occamlab.cli.report", "rebuild the demo's page from its run store"),
    "train": ("occamlab.cli.train", "train a small transformer from a TOML config (or --export one)"),
    "finetune": ("occamlab.cli.finetune", "fine-tune a checkpoint: full, frozen-embedding or LoRA"),
    "data": ("occamlab.cli.data", "corpora available offline (occam data list)"),
    "process": ("occamlab.cli.process", "stochastic processes: info, minimal generators, compare, sample"),
    "llc": ("occamlab.cli.llc", "local learning coefficient of checkpoints; `llc validate` suite"),
    "compress": ("occamlab.cli.compress", "critical compression threshold n_q and two-part code"),
    "sweep": ("occamlab.cli.sweep", "run a sweep of experiments into a resumable run store"),
    "runs": ("occamlab.cli.runs", "list, show, export and retry the runs of a run store"),
}


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="occam",
        description="occamlab: scaling laws, learning coefficients and computational mechanics.",
    )
    parser.add_argument("--version", action="version", version=f"occamlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``occam`` console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = _parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(args_list)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if not args_list else 2
    try:
        return int(args.func(args) or 0)
    except OccamError as exc:
        print(f"occam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user named cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"occam {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"occam {args.command}: error: not enough memory for this request (ask for less: "
              "fewer samples, bootstrap resamples or runs)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("occam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
