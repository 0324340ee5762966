"""``occam compress``: the critical compression threshold n_q of an occamlab checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from occamlab.cli._common import add_json_option, write_json

__all__ = ["register"]

# the same names as occamlab.slt.SCHEMES (a test checks), written out so that `--help` needs no torch
SCHEMES = ("rtn-tensor", "rtn-channel", "rtn-group", "svd")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compress",
        help="critical compression threshold n_q of a checkpoint (RTN bits or SVD rank)",
        description=(
            "Find n_q, the most aggressive compression (fewest bits for rtn-*, lowest rank for svd) "
            "whose loss on --data rises by at most --epsilon nats per token, by bisection; also "
            "report the two-part code length at n_q."
        ),
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--data", required=True, help="corpus name or .npy token file to evaluate on")
    p.add_argument("--max-tokens", type=int, default=65_536)
    p.add_argument("--scheme", default="rtn-channel", choices=SCHEMES)
    p.add_argument("--epsilon", type=float, required=True, help="tolerated loss increase (nats)")
    p.add_argument("--group-size", type=int, default=32, help="rtn-group: weights per group")
    p.add_argument("--symmetric", action="store_true", help="symmetric RTN (no zero point)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when torch sees it, else CPU), cpu, cuda or cuda:N")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from occamlab.experiments.compress import Config, measure

    config = Config(checkpoint=args.checkpoint, data=args.data, max_tokens=args.max_tokens,
                    scheme=args.scheme, epsilon=args.epsilon, group_size=args.group_size,
                    symmetric=args.symmetric, device=args.device)
    report = measure(config)
    if args.json:
        write_json(report.to_dict(), args.json)
    if args.json != "-":
        print(report)
    return 0
