"""``occam data list``: the corpora available offline, with sizes and licences."""

from __future__ import annotations

import argparse
from typing import Any

from occamlab.cli._common import add_json_option, write_json


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("data", help="corpora available offline (occam data list)")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list registered corpora with sizes and licences")
    add_json_option(lst)
    lst.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from occamlab.train import list_corpora

    result = list_corpora()
    if args.json:
        write_json(result.to_dict(), args.json)
        if args.json == "-":
            return 0
    print(result)
    return 0
