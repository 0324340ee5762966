"""``occam fit ...``: fit scaling laws to a table of measurements (CSV, Parquet, JSON lines)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from occamlab.cli._common import add_json_option, write_json
from occamlab.errors import ConfigError

RAW = argparse.RawDescriptionHelpFormatter

EXAMPLES = {
    "chinchilla": """example:
  occam fit chinchilla runs.csv --n params --d tokens --loss loss --bootstrap 1000 --json fit.json --plot fit.png
  occam fit chinchilla porian.csv --n n --flops flops --loss loss      # D = C / (6 N)
JSON keys: fit {form, params {E, A, B, alpha, beta}, ci {name: [lo, hi]}, level, objective (mean
Huber loss of the log residuals at the optimum), n_points, converged, warnings, ...}, allocation
{compute, n_opt, d_opt, tokens_per_param, ... with *_ci intervals, a, b}, extrapolation (--holdout).""",
    "isoflop": """example:
  occam fit isoflop porian.csv --n n --flops flops --loss loss --json isoflop.json --plot isoflop.png""",
    "power-law": """example:
  occam fit power-law curve.csv --x tokens --y loss            # y = E + A x^-alpha
  occam fit power-law curve.csv --x tokens --y loss --no-saturating   # y = A x^-alpha""",
    "transfer": """example:
  occam fit transfer scratch.csv finetuned.csv --n N --d tokens --loss loss --json transfer.json
The first table holds from-scratch runs on the target data (several D per model size), the second
fine-tuned runs (N, fine-tuning tokens, loss); D_T = k D_F^alpha N^beta is fitted (Hernandez et al.).""",
    "loss-to-loss": """example:
  occam fit loss-to-loss models.csv --n params --d tokens --x loss_c4_val --y loss_paloma_ptb
Rows are models paired by (N, D); E_x and E_y come from Chinchilla fits of each loss.""",
    "downstream": """example:
  occam fit downstream models.csv --x C --metric-prefix task_ --json verdicts.json
Verdicts: predictable, noisy, non-monotone, inverse, breakthrough (Lourie et al. 2025).""",
}


def register(sub: Any) -> None:
    p = sub.add_parser("fit", help="fit a scaling law", description="Fit scaling laws to measurements.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    c = kinds.add_parser("chinchilla", help="L(N, D) = E + A/N^alpha + B/D^beta (Approach 3)",
                         epilog=EXAMPLES["chinchilla"], formatter_class=RAW)
    c.add_argument("data")
    c.add_argument("--n", required=True, metavar="COL", help="column of model sizes (parameters)")
    c.add_argument("--d", metavar="COL", help="column of training tokens")
    c.add_argument("--flops", metavar="COL", help="column of training compute; with no --d, D = C/(6N)")
    c.add_argument("--loss", default="loss", metavar="COL", help="column of losses (nats)")
    _common_fit_options(c)
    c.add_argument("--holdout", type=int, default=0, metavar="K",
                   help="also fit without the K largest model sizes and report the extrapolation error")
    c.set_defaults(func=_chinchilla)

    i = kinds.add_parser("isoflop", help="Approach 2: isoFLOP parabolas, N_opt ~ C^a",
                         epilog=EXAMPLES["isoflop"], formatter_class=RAW)
    i.add_argument("data")
    i.add_argument("--n", required=True, metavar="COL")
    i.add_argument("--flops", metavar="COL", help="column of compute budgets (equal values form a curve)")
    i.add_argument("--d", metavar="COL", help="tokens column (budgets C = 6 N D, rounded) if no --flops")
    i.add_argument("--loss", default="loss", metavar="COL")
    i.add_argument("--window", type=int, default=7, help="points nearest each minimum used (0 = all)")
    i.add_argument("--bootstrap", type=int, default=1000, metavar="K")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--plot", metavar="OUT.png")
    add_json_option(i)
    i.set_defaults(func=_isoflop)

    w = kinds.add_parser("power-law", help="y = E + A x^-alpha", epilog=EXAMPLES["power-law"],
                         formatter_class=RAW)
    w.add_argument("data")
    w.add_argument("--x", required=True, metavar="COL")
    w.add_argument("--y", default="loss", metavar="COL")
    w.add_argument("--no-saturating", action="store_true", help="fit y = A x^-alpha (no asymptote)")
    _common_fit_options(w)
    w.set_defaults(func=_power_law)

    t = kinds.add_parser("transfer", help="effective data transferred D_T = k D_F^alpha N^beta",
                         epilog=EXAMPLES["transfer"], formatter_class=RAW)
    t.add_argument("scratch", help="from-scratch runs on the target data")
    t.add_argument("finetuned", help="fine-tuned runs")
    t.add_argument("--n", default="N", metavar="COL")
    t.add_argument("--d", default="D", metavar="COL", help="tokens column (both tables)")
    t.add_argument("--loss", default="loss", metavar="COL")
    add_json_option(t)
    t.set_defaults(func=_transfer)

    ll = kinds.add_parser("loss-to-loss", help="y = K (x - E_x)^kappa + E_y",
                          epilog=EXAMPLES["loss-to-loss"], formatter_class=RAW)
    ll.add_argument("data")
    ll.add_argument("--n", required=True, metavar="COL")
    ll.add_argument("--d", required=True, metavar="COL")
    ll.add_argument("--x", required=True, metavar="COL")
    ll.add_argument("--y", required=True, metavar="COL")
    ll.add_argument("--bootstrap", type=int, default=0, metavar="K")
    ll.add_argument("--seed", type=int, default=0)
    add_json_option(ll)
    ll.set_defaults(func=_loss_to_loss)

    dn = kinds.add_parser("downstream", help="classify how downstream metrics scale",
                          epilog=EXAMPLES["downstream"], formatter_class=RAW)
    dn.add_argument("data")
    dn.add_argument("--x", required=True, metavar="COL", help="scale column (compute, parameters); > 0")
    dn.add_argument("--metric", action="append", default=[], metavar="COL", help="a metric column (repeat)")
    dn.add_argument("--metric-prefix", metavar="PREFIX", help="every column starting with PREFIX")
    dn.add_argument("--lower-is-better", action="store_true", help="metrics are errors or losses")
    add_json_option(dn)
    dn.set_defaults(func=_downstream)


def _common_fit_options(p: Any) -> None:
    p.add_argument("--loss-fn", choices=["huber", "lsq"], default="huber", help="default: huber")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log residuals (1e-3)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K", help="bootstrap resamples (0: Hessian)")
    p.add_argument("--group-by", metavar="COL", help="bootstrap whole groups (say, model sizes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="OUT.png")
    add_json_option(p)


def _load(path: str) -> Any:
    from occamlab.scaling import read_table

    return read_table(path)


def _echo(obj: Any, args: Any) -> None:
    # with --json - the JSON goes to stdout alone; the table goes to stderr
    print(obj, file=sys.stderr if args.json == "-" else sys.stdout)


def _finish(result: Any, args: Any) -> int:
    _echo(result, args)
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0


def _chinchilla(args: Any) -> int:
    from occamlab.scaling import fit_chinchilla

    if args.d is None and args.flops is None:
        raise ConfigError("give --d (tokens) or --flops (training compute, D = C/(6N))")
    res = fit_chinchilla(_load(args.data), n=args.n, d=args.d, flops=args.flops, loss=args.loss,
                         loss_fn=args.loss_fn, delta=args.delta, bootstrap=args.bootstrap,
                         groups=args.group_by, holdout=args.holdout, seed=args.seed,
                         source=args.data)
    if args.plot:
        res.fit.plot(args.plot)
    return _finish(res, args)


def _isoflop(args: Any) -> int:
    from occamlab.scaling import fit_isoflop, plot_isoflop

    df = _load(args.data)
    res = fit_isoflop(df, n=args.n, loss=args.loss, flops=args.flops, d=args.d, bootstrap=args.bootstrap,
                      window=args.window or None, seed=args.seed, source=args.data)
    if args.plot:
        plot_isoflop(res, path=args.plot)
    return _finish(res, args)


def _power_law(args: Any) -> int:
    from occamlab.scaling import PowerLaw, fit

    df = _load(args.data)
    form = PowerLaw(saturating=not args.no_saturating)
    res = fit(form, df, target=args.y, columns={"x": args.x}, loss_fn=args.loss_fn, delta=args.delta,
              bootstrap=args.bootstrap, groups=args.group_by, seed=args.seed, source=args.data)
    if args.plot:
        res.plot(args.plot)
    return _finish(res, args)


def _transfer(args: Any) -> int:
    from occamlab.scaling import fit_transfer

    res = fit_transfer(_load(args.scratch), _load(args.finetuned), n=args.n, d=args.d, loss=args.loss,
                       source=f"{args.scratch} / {args.finetuned}")
    return _finish(res, args)


def _loss_to_loss(args: Any) -> int:
    from occamlab.scaling import fit_loss_to_loss

    res = fit_loss_to_loss(_load(args.data), x=args.x, y=args.y, n=args.n, d=args.d,
                           bootstrap=args.bootstrap, seed=args.seed, source=args.data)
    return _finish(res, args)


def _downstream(args: Any) -> int:
    from occamlab.scaling import classify_downstream

    df = _load(args.data)
    metrics = list(args.metric)
    if args.metric_prefix:
        metrics += [c for c in df.columns if str(c).startswith(args.metric_prefix) and c not in metrics]
    if not metrics:
        raise ConfigError("give --metric COL (repeatable) or --metric-prefix PREFIX; "
                          f"columns are {list(df.columns)}")
    res = classify_downstream(df, x=args.x, metrics=metrics, higher_is_better=not args.lower_is_better,
                              source=args.data)
    return _finish(res, args)


__all__ = ["register"]
