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

from occamlab._toml import parse_scalar, read_toml
from occamlab.cli._common import add_json_option, parse_kv, write_json
from occamlab.errors import ConfigError, DataError

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
    p.add_argument("--fast", action="store_true", help="validate: only the cheap cases")
    p.add_argument("--cases", nargs="*", default=None, help="validate: these cases only")
    add_json_option(p)
    p.set_defaults(func=run)




def sgld_settings(config_file: str | None, sets: list[str] | None) -> dict[str, Any]:
    """SGLD settings from a TOML file and ``--set`` overrides (file < --set)."""
    out: dict[str, Any] = {}
    if config_file:
        doc = read_toml(config_file)
        out.update(doc.get("sgld", doc))
    for k, v in parse_kv(sets).items():
        out[k] = parse_scalar(v)
    return out


def _validate(args: argparse.Namespace) -> int:
    from occamlab.slt import SGLDConfig, validate_llc

    settings = sgld_settings(args.config, args.set)
    cfg = SGLDConfig.from_dict(settings) if settings else None
    progress = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json != "-" else None
    res = validate_llc(args.cases, fast=args.fast, config=cfg, seed=args.seed, progress=progress)
    if args.json:
        d = res.to_dict()
        keep = ("name", "family", "n_params", "truth", "estimate", "stderr", "relative_error",
                "multiplicity", "truth_fraction", "step_size", "n_draws", "gamma", "temperature",
                "seconds", "warnings")
        d["cases"] = [{k: c[k] for k in keep if k in c} for c in d["cases"]]
        write_json(d, args.json)
    if args.json != "-":
        print(res)
    return 0


def lm_data(spec: str, context: int, vocab_size: int, max_tokens: int) -> tuple[Any, Any]:
    """Non-overlapping (inputs, targets) windows of ``context`` tokens from a corpus."""
    import torch

    from occamlab.train import as_tokens, iter_windows, load_corpus

    if max_tokens < context + 1:
        raise ConfigError(f"--max-tokens must be > the model context {context}, got {max_tokens}")
    tokens = as_tokens(load_corpus(spec, max_bytes=max_tokens + 1), vocab_size=vocab_size)
    batches = list(iter_windows(tokens, context=context, batch_size=256, max_tokens=max_tokens))
    if not batches:
        raise DataError(f"{spec}: no complete window of {context} tokens")
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def token_loss(logits: Any, targets: Any) -> Any:
    """Mean next-token cross-entropy in nats: ``(B, T, V)`` logits against ``(B, T)`` targets."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


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
    import torch

    from occamlab.slt import (
        SGLDConfig,
        calibrate_sgld,
        estimate_llc,
        estimate_llc_calibrated,
        estimate_llc_trajectory,
        pin_nbeta,
    )
    from occamlab.train import load_checkpoint

    torch.set_num_threads(1)
    loaded = [load_checkpoint(t) for t in args.targets]
    model0, mcfg = loaded[0]
    for t, (_, c) in zip(args.targets[1:], loaded[1:], strict=True):
        if (c.context, c.vocab_size) != (mcfg.context, mcfg.vocab_size):
            raise ConfigError(f"{t}: context/vocabulary differ from {args.targets[0]}")
    data = lm_data(args.data, mcfg.context, mcfg.vocab_size, args.max_tokens)
    n_tokens = int(data[1].numel())
    settings = sgld_settings(args.config, args.set)
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    settings.setdefault("batch_size", 16)
    cfg = SGLDConfig.from_dict(settings)
    if len(loaded) == 1 and args.calibrate:
        # calibrate, estimate, and rerun at a smaller step if the estimate's own chains run hot
        res: Any
        res, cal = estimate_llc_calibrated(model0, token_loss, data, cfg, seed=args.seed,
                                           n=n_tokens)
        print(cal, file=sys.stderr)
    elif len(loaded) == 1:
        res = estimate_llc(model0, token_loss, data, cfg, seed=args.seed, n=n_tokens)
    else:
        if args.calibrate:
            cfg = pin_nbeta(cfg, n_tokens)  # the pilots would otherwise take n from the windows
            cal = calibrate_sgld(model0, token_loss, data, cfg, seed=args.seed)
            print(cal, file=sys.stderr)
            cfg = cal.recommended
        res = estimate_llc_trajectory([m for m, _ in loaded], token_loss, data, cfg,
                                      seed=args.seed, labels=args.targets, n=n_tokens)
    if args.json:
        write_json(res.to_dict(), args.json)
    if args.json != "-":
        print(res)
    return 0
