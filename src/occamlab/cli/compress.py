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
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    import torch

    from occamlab.slt import critical_compression, two_part_code_length
    from occamlab.train import lm_windows, load_checkpoint, token_loss

    torch.set_num_threads(1)
    model, mcfg = load_checkpoint(args.checkpoint)
    data = lm_windows(args.data, context=mcfg.context, vocab_size=mcfg.vocab_size,
                      max_tokens=args.max_tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = critical_compression(
            model, token_loss, data, scheme=args.scheme, epsilon=args.epsilon,
            group_size=args.group_size, symmetric=args.symmetric,
        )
    out = res.to_dict()
    code = None
    if res.n_q is not None:  # the data part counts predicted tokens, not windows
        code = two_part_code_length(model, token_loss, data, scheme=args.scheme, level=res.n_q,
                                    group_size=args.group_size, symmetric=args.symmetric,
                                    n=int(data[1].numel()))
        out["two_part_code"] = code.to_dict()
    if args.json:
        write_json(out, args.json)
    if args.json != "-":
        print(res)
        if code is not None:
            print()
            print(code)
    return 0
