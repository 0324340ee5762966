"""``occam llc``: LLC of occamlab checkpoints, and ``occam llc validate`` (the known-lambda suite).

``occam llc CHECKPOINT [CHECKPOINT ...] --data SPEC`` estimates the LLC of each checkpoint (one:
an LLCResult; several: the LLC along them) on language-model windows of the corpus ``SPEC``
(a corpus name from ``occam data list`` or a ``.npy`` token file). ``occam llc validate`` runs the
known-lambda suite and prints estimate, truth and relative error for each case.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from occamlab.cli._common import add_json_option, parse_kv, write_json
from occamlab.errors import ConfigError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "llc",
        help="estimate the local learning coefficient of checkpoints, or `llc validate`",
        description=(
            "Estimate the local learning coefficient (Lau et al. 2023) of occamlab checkpoints "
            "with localized SGLD, or run `occam llc validate`: the suite of models whose learning "
            "coefficient is known exactly."
        ),
    )
    p.add_argument("targets", nargs="+", metavar="CHECKPOINT",
                   help="checkpoint directories (several: the LLC along them), or `validate`")
    p.add_argument("--data", help="corpus name or .npy token file the chains see (checkpoints)")
    p.add_argument("--max-tokens", type=int, default=65_536,
                   help="tokens of --data to use (default 65536)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="SGLD minibatch size in windows (default: from the config, else 16)")
    p.add_argument("--config", metavar="FILE", help="TOML file of SGLD settings (an [sgld] table "
                   "or top-level keys: step_size, gamma, nbeta, n_chains, n_draws, ...)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one SGLD setting")
    p.add_argument("--calibrate", action="store_true",
                   help="pick step size and gamma with pilot chains first (checkpoints)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when torch sees it, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--fast", action="store_true", help="validate: only the cheap cases")
    p.add_argument("--cases", nargs="*", default=None, help="validate: these cases only")
    add_json_option(p)
    p.set_defaults(func=run)




def _config(args: argparse.Namespace, checkpoint: str) -> Any:
    """The ``llc`` experiment's config from the arguments (SGLD settings: file < --set)."""
    from occamlab._config import load_dotted
    from occamlab.experiments.llc import Config

    sgld = load_dotted(args.config, parse_kv(args.set), table="sgld", what="SGLD settings file")
    if args.batch_size is not None:
        sgld["batch_size"] = args.batch_size
    return Config.from_dict({"checkpoint": checkpoint, "data": args.data or "",
                             "max_tokens": args.max_tokens, "sgld": sgld,
                             "calibrate": args.calibrate, "seed": args.seed,
                             "device": args.device})


def _validate(args: argparse.Namespace) -> int:
    from occamlab._config import load_dotted
    from occamlab.slt import SGLDConfig, validate_llc

    settings = load_dotted(args.config, parse_kv(args.set), table="sgld",
                           what="SGLD settings file")
    cfg = SGLDConfig.from_dict(settings) if settings else None
    progress = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json != "-" else None
    res = validate_llc(args.cases, fast=args.fast, config=cfg, seed=args.seed, progress=progress)
    return _finish(res, args)


def _finish(res: Any, args: argparse.Namespace) -> int:
    if args.json:
        write_json(res.to_dict(), args.json)
    if args.json != "-":
        print(res)
    return 0


def run(args: argparse.Namespace) -> int:
    import warnings

    with warnings.catch_warnings():
        # the result lists its own warnings; torch's vmap fallback notes are noise here
        warnings.simplefilter("ignore")
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.targets == ["validate"]:
        return _validate(args)
    if "validate" in args.targets:
        raise ConfigError("`validate` takes no checkpoints; run `occam llc validate` alone")
    if not args.data:
        raise ConfigError("--data is required for checkpoints (a corpus name or a .npy file)")
    from occamlab.experiments.llc import estimate, trajectory

    config = _config(args, args.targets[0])

    def progress(text: str) -> None:
        print(text, file=sys.stderr)

    if len(args.targets) == 1:
        return _finish(estimate(config, progress=progress), args)
    return _finish(trajectory(config, args.targets, progress=progress), args)
