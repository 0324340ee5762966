"""``occam report``: rebuild the demo's page and results from its run store (nothing trains)."""

from __future__ import annotations

import argparse
from typing import Any

from occamlab.cli._common import add_json_option


def register(sub: Any) -> None:
    r = sub.add_parser("report", help="rebuild the demo's page from its run store",
                       description="Rebuild index.html and results.json from the runs stored by "
                       "`occam demo` or `occam sweep` (lora-finetune), without training anything.")
    r.add_argument("--store", required=True, metavar="DIR", help="the demo's run store")
    r.add_argument("--out", required=True, metavar="DIR", help="where the page goes")
    r.add_argument("--prices", default=None, metavar="FILE",
                   help="price table (TOML) for the ledger's cost (default: the store's copy)")
    add_json_option(r)
    r.set_defaults(func=_report, output_folders=("out",))


def _report(args: argparse.Namespace) -> int:
    from occamlab.cli.demo import finish
    from occamlab.experiments import build_report, load_prices

    prices = load_prices(args.prices) if args.prices else None
    return finish(build_report(args.store, args.out, prices=prices), args)
