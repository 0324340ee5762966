"""``occam finetune``: fine-tune a checkpoint on another corpus (full, frozen-embedding, LoRA)."""

from __future__ import annotations

import argparse
from typing import Any

from occamlab.cli._common import parse_kv, write_json
from occamlab.errors import ConfigError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a checkpoint: full, frozen embeddings, or LoRA of rank R",
        description="Fine-tune CHECKPOINT (a checkpoint or run directory) on --data. The model "
        "shape comes from the checkpoint; optimisation settings from --config/--set (defaults: "
        "the checkpoint's own training config). LoRA uses 10x the learning rate by default.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument(
        "--data",
        required=True,
        metavar="CORPUS",
        help="corpus name (occam data list), text file or folder, .npy ids, hf:NAME",
    )
    p.add_argument(
        "--mode",
        choices=["full", "frozen-embedding", "lora"],
        default=None,
        help="what to train (default: lora when --lora-rank is given, else full)",
    )
    p.add_argument("--lora-rank", type=int, default=None, metavar="R", help="LoRA rank (1 allowed)")
    p.add_argument(
        "--lora-modules",
        default="all",
        help="all, attention, mlp, or a comma list of attn.qkv,attn.proj,mlp.fc,mlp.proj",
    )
    p.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument(
        "--lora-lr-scale",
        type=float,
        default=10.0,
        help="LoRA learning rate = this x lr (default 10, LoRA Without Regret)",
    )
    p.add_argument("--config", metavar="FILE.toml", help="training settings for the fine-tune")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--resume", action="store_true", help="continue the fine-tune in --out")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", metavar="OUT", default=None)
    p.set_defaults(func=run, output_folders=("out",))


def run(args: argparse.Namespace) -> int:
    from occamlab.experiments.finetune import Config, default_train_config, execute
    from occamlab.train import load_config

    overrides = parse_kv(args.set)
    overrides["data.corpus"] = args.data
    if args.config:
        train = load_config(args.config, overrides)
    else:
        train = default_train_config(args.checkpoint, overrides)
    mode = args.mode or ("lora" if args.lora_rank is not None else "full")
    if mode != "lora" and args.lora_rank is not None:
        raise ConfigError(f"--lora-rank only applies to --mode lora (got --mode {mode})")
    config = Config(checkpoint=args.checkpoint, train=train, mode=mode,
                    lora_rank=8 if args.lora_rank is None else args.lora_rank, lora_alpha=args.lora_alpha,
                    lora_modules=args.lora_modules, lora_lr_scale=args.lora_lr_scale)
    result = execute(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(result)
    if args.json:
        write_json(result.to_dict(), args.json)
    return 0
