"""``occam train``: train a small transformer from a TOML config; or export a checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from occamlab.cli._common import parse_kv, write_json
from occamlab.errors import ConfigError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a small transformer (checkpoint, loss curve, summary JSON)",
        description="Train a decoder-only transformer. Writes OUT/best (validation optimum), "
        "OUT/last (resumable), OUT/loss_curve.jsonl and OUT/summary.json.",
    )
    p.add_argument(
        "--config", metavar="FILE.toml", help="training config (see configs/train-tiny.toml)"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a config key, e.g. --set steps=500 --set model.d_model=32",
    )
    p.add_argument("--out", metavar="DIR", help="run directory to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from OUT/last")
    p.add_argument(
        "--export",
        metavar="CHECKPOINT",
        help="instead of training, export CHECKPOINT as a Hugging Face GPT-2 model to --out",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--json",
        metavar="OUT",
        default=None,
        help="also write the summary to file OUT ('-' for standard output)",
    )
    p.set_defaults(func=run, output_folders=("out",))


def run(args: argparse.Namespace) -> int:
    if not args.out:
        raise ConfigError("--out DIR is required")
    from occamlab.experiments.train import execute
    from occamlab.train import export_transformers, load_config

    if args.export:
        path = export_transformers(args.export, args.out)
        print(f"exported {args.export} to {path} (load with transformers.AutoModelForCausalLM)")
        return 0
    config = load_config(args.config, parse_kv(args.set))
    result = execute(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(result)
    print(f"\nwrote {args.out}/summary.json, loss_curve.jsonl, best/, last/")
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0
