"""``occam process``: list, info, generator, compare, sample, infer (stochastic processes)."""

from __future__ import annotations

import argparse
import io
from typing import Any

from occamlab._io import atomic_write_bytes
from occamlab.cli._common import add_json_option, parse_kv, write_json
from occamlab.errors import ConfigError

__all__ = ["register"]

# each point is a generator search (seconds): more than this is a typo, not a plan
MAX_SWEEP_POINTS = 10_000


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("process", help="stochastic processes: info, minimal generators, "
                              "compare, sample, infer")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser, *, name_required: bool = True) -> None:
        sp.add_argument("name", nargs="?" if not name_required else None,
                        help="library process (see `occam process list`) or 'file'")
        sp.add_argument("--param", action="append", metavar="K=V", default=[],
                        help="process parameter, repeatable (e.g. --param p=0.3)")
        sp.add_argument("--file", default=None, help="JSON or TOML file of matrices or edges")

    sp = sub.add_parser("list", help="names, parameters, defaults and ranges")
    add_json_option(sp)
    sp.set_defaults(func=_list)

    sp = sub.add_parser("info", help="C_mu, h_mu, E, crypticity, causal states")
    common(sp, name_required=False)
    sp.add_argument("--tol", type=float, default=1e-9, help="belief-merging tolerance")
    sp.add_argument("--max-states", type=int, default=200_000, help="mixed-state cap")
    sp.add_argument("--max-depth", type=int, default=None, help="mixed-state depth cap")
    sp.add_argument("--precision", type=float, default=1e-6, metavar="P",
                    help="without --max-depth, deepen the mixed-state search until bounds that "
                    "cannot be exact are this narrow (bits; default 1e-6)")
    sp.add_argument("--block-entropies", type=int, default=None, metavar="L",
                    help="also print H(L) and E(L) = H(L) - L h_mu for L = 0..L")
    add_json_option(sp)
    sp.set_defaults(func=_info)

    sp = sub.add_parser("generator", help="least-entropy K-state generator of the process")
    common(sp, name_required=False)
    sp.add_argument("--states", type=int, required=True, metavar="K")
    sp.add_argument("--starts", type=int, default=12, help="random starts (default 12)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--word-length", type=int, default=None)
    sp.add_argument("--word-tol", type=float, default=1e-6)
    add_json_option(sp)
    sp.set_defaults(func=_generator)

    sp = sub.add_parser("compare", help="C_mu vs best generator (and Lohr) along a sweep")
    common(sp)
    sp.add_argument("--sweep", required=True, metavar="K=START:STOP:N", action="append",
                    help="parameter sweep, e.g. p=0.01:0.49:49; give two for a grid "
                    "(e.g. --sweep p=0.1:0.9:9 --sweep q=0.1:0.9:9)")
    sp.add_argument("--states", type=int, default=2, help="generator states (default 2)")
    sp.add_argument("--starts", type=int, default=2, help="random starts per point")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--plot", default=None, metavar="OUT.png")
    add_json_option(sp)
    sp.set_defaults(func=_compare)

    sp = sub.add_parser("sample", help="sample sequences (and beliefs) to an .npz file")
    common(sp, name_required=False)
    sp.add_argument("-n", "--length", type=int, required=True)
    sp.add_argument("--batch", type=int, default=1)
    sp.add_argument("--beliefs", action="store_true", help="also save belief states")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", required=True, metavar="FILE.npz")
    add_json_option(sp)
    sp.set_defaults(func=_sample, output_files=("out",))

    sp = sub.add_parser("infer", help="infer the epsilon-machine of samples (CSSR), with "
                        "C_mu, h_mu, E and bootstrap intervals")
    sp.add_argument("samples", metavar="SAMPLES.npz|.npy",
                    help="symbols: .npz from `occam process sample` or an integer .npy array")
    sp.add_argument("--max-history", type=int, default=6, metavar="L",
                    help="longest history L_max (default 6)")
    sp.add_argument("--alpha", type=float, default=0.001, metavar="A",
                    help="significance level of the tests (default 0.001)")
    sp.add_argument("--future-length", type=int, default=3, metavar="M",
                    help="future symbols compared before a recursion split (default 3)")
    sp.add_argument("--test", choices=["chi2", "g"], default="chi2",
                    help="homogeneity test: Pearson chi-squared (default) or G")
    sp.add_argument("--bootstrap", type=int, default=0, metavar="K",
                    help="moving-block bootstrap resamples for intervals (default 0: none)")
    sp.add_argument("--block-length", type=int, default=None, metavar="N",
                    help="bootstrap block length (default max(n^(1/3), 4 (L + M)))")
    sp.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    sp.add_argument("--machine", default=None, metavar="OUT.json",
                    help="write the inferred machine as a process file (`info --file` reads it)")
    add_json_option(sp)
    sp.set_defaults(func=_infer)


def _check_starts(args: argparse.Namespace) -> None:
    # the library takes 0 (only warm starts, as compare's passes do; compare --starts 0 draws
    # C_mu and Lohr's bound alone); `process generator` without a start would find nothing
    if args.starts < 1:
        raise ConfigError(f"--starts must be >= 1 (random starts of the search), got {args.starts}")


def _presentation(args: argparse.Namespace) -> Any:
    from occamlab.processes import build_process, load_presentation

    params = parse_kv(args.param, what="--param")
    if args.file:
        if params:
            raise ConfigError("--param applies to library processes, not to --file")
        return load_presentation(args.file)
    if not args.name:
        raise ConfigError("give a process NAME (see `occam process list`) or --file F")
    return build_process(args.name, params)


def _list(args: argparse.Namespace) -> int:
    from occamlab.processes import list_processes

    return _finish(list_processes(), args)


def _finish(result: Any, args: argparse.Namespace) -> int:
    """Print the result (unless its JSON goes to standard output) and write ``--json``."""
    if getattr(args, "json", None) != "-":
        print(result)
    if getattr(args, "json", None):
        write_json(result.to_dict(), args.json)
    return 0


def _info(args: argparse.Namespace) -> int:
    from occamlab.processes import analyze

    info = analyze(_presentation(args), tol=args.tol, max_states=args.max_states,
                   max_depth=args.max_depth, block_length=args.block_entropies,
                   precision=args.precision)
    return _finish(info, args)


def _generator(args: argparse.Namespace) -> int:
    from occamlab.processes import analyze, minimal_generator

    _check_starts(args)
    pres = _presentation(args)
    info = analyze(pres)
    if info.truncated:
        raise ConfigError(f"{pres.name} has infinitely many causal states; the generator search "
                          "needs a finite-state process")
    res = minimal_generator(
        pres, args.states, n_starts=args.starts, seed=args.seed, word_length=args.word_length,
        word_tol=args.word_tol, statistical_complexity=info.statistical_complexity,
        excess_entropy=info.excess_entropy, target_states=info.n_causal_states,
    )
    return _finish(res, args)


def _parse_sweep(text: str) -> tuple[str, list[float]]:
    key, sep, rng = text.partition("=")
    parts = rng.split(":")
    if not sep or len(parts) != 3 or not key.strip():
        raise ConfigError(f"--sweep expects K=START:STOP:N, got {text!r}")
    try:
        a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"--sweep expects numbers in K=START:STOP:N, got {text!r}") from None
    if not 1 <= n <= MAX_SWEEP_POINTS:
        raise ConfigError(f"--sweep needs N from 1 to {MAX_SWEEP_POINTS}, got {n}")
    import numpy as np

    return key.strip(), [float(v) for v in np.linspace(a, b, n)]


def _compare(args: argparse.Namespace) -> int:
    from occamlab.processes import compare, generator_map

    if len(args.sweep) > 2:
        raise ConfigError(f"--sweep may be given once (a line) or twice (a grid), got "
                          f"{len(args.sweep)}")
    sweeps = [_parse_sweep(text) for text in args.sweep]
    n_points = len(sweeps[0][1]) * (len(sweeps[1][1]) if len(sweeps) == 2 else 1)
    if n_points > MAX_SWEEP_POINTS:
        raise ConfigError(f"--sweep asks for {n_points} points; at most {MAX_SWEEP_POINTS} "
                          "(each is a generator search)")
    params = parse_kv(args.param, what="--param")
    if len(sweeps) == 2:
        (kx, xs), (ky, ys) = sweeps
        if params:
            raise ConfigError("--param cannot be combined with a two-parameter grid")
        res: Any = generator_map(args.name, kx, xs, ky, ys, states=args.states,
                                 n_starts=args.starts, seed=args.seed)
    else:
        key, values = sweeps[0]
        res = compare(args.name, key, values, params=params, states=args.states,
                      n_starts=args.starts, seed=args.seed)
    if args.plot:
        fmt = str(args.plot).rsplit(".", 1)[-1].lower() if "." in str(args.plot) else "png"
        if fmt not in ("png", "svg", "pdf"):
            raise ConfigError(f"--plot must end in .png, .svg or .pdf, got {args.plot!r}")
        tmp = io.BytesIO()
        res.plot(tmp, format=fmt)
        atomic_write_bytes(args.plot, tmp.getvalue())
    return _finish(res, args)


def _sample(args: argparse.Namespace) -> int:
    from occamlab.processes import sample, save_samples

    if not str(args.out).endswith(".npz"):
        raise ConfigError(f"--out must name a .npz file, got {args.out!r}")
    s = sample(_presentation(args), args.length, batch=args.batch, seed=args.seed,
               beliefs=args.beliefs)
    return _finish(save_samples(s, args.out), args)


def _infer(args: argparse.Namespace) -> int:
    from occamlab.processes import infer

    if args.machine is not None and not str(args.machine).lower().endswith(".json"):
        raise ConfigError(f"--machine must name a .json file, got {args.machine!r}")
    res = infer(args.samples, max_history=args.max_history, alpha=args.alpha,
                future_length=args.future_length, test=args.test, bootstrap=args.bootstrap,
                block_length=args.block_length, seed=args.seed)
    if args.machine is not None:
        res.save_machine(args.machine)
    return _finish(res, args)
