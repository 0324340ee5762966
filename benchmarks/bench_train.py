"""Training throughput of occamlab's transformer against transformers' GPT-2, in one run.

For four sizes (about 1e4 to 5e6 parameters; context 128, vocabulary 256, 4,096 tokens a step)
it times full training steps (batch sampling, forward, cross-entropy, backward, clipping, AdamW)
of ``occamlab.train.Transformer`` and of ``transformers.GPT2LMHeadModel`` built from an equal
config, each with 1 and 2 torch threads, interleaving the two models round by round and keeping
each one's best round. It then measures a sweep of independent 1-thread runs: one worker alone,
then two workers at once (total tokens/s).

Targets (issue 4): ours / GPT-2 >= 1.2 at every size (best of 1/2 threads on each side); two
1-thread workers >= 1.7x one 1-thread worker. Writes benchmarks/results/train.json and .md.

Usage: python benchmarks/bench_train.py [--quick] [--rounds R] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from occamlab.train import ModelConfig, Transformer, gpt2_config, n_params, sample_batch
from occamlab.train import n_params_non_embedding as n_nonemb

RESULTS = Path(__file__).resolve().parent / "results"
CONTEXT, VOCAB, BATCH = 128, 256, 32
SIZES = {
    "1e4": ModelConfig(vocab_size=VOCAB, context=CONTEXT, d_model=16, n_layer=2, n_head=2),
    "2e5": ModelConfig(vocab_size=VOCAB, context=CONTEXT, d_model=64, n_layer=4, n_head=4),
    "1e6": ModelConfig(vocab_size=VOCAB, context=CONTEXT, d_model=128, n_layer=6, n_head=4),
    "5e6": ModelConfig(vocab_size=VOCAB, context=CONTEXT, d_model=256, n_layer=6, n_head=8),
}
DATA = np.random.default_rng(0).integers(0, VOCAB, 2_000_000)
LAST_CPU_RATE = [0.0]  # tokens per CPU-second of the last timed measurement


def _build(kind: str, cfg: ModelConfig) -> nn.Module:
    if kind == "occamlab":
        return Transformer(cfg, seed=0)
    import transformers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(gpt2_config(cfg))


def _logits(kind: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x) if kind == "occamlab" else model(input_ids=x).logits


def tokens_per_second(kind: str, cfg: ModelConfig, *, threads: int, seconds: float,
                      model: nn.Module | None = None, warmup: int = 2) -> float:
    """Training tokens per second of ``kind`` over at least ``seconds`` (after warm-up steps)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model if model is not None else _build(kind, cfg)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, foreach=False)

        def step(i: int) -> None:
            x, y = sample_batch(DATA, context=CONTEXT, batch_size=BATCH, seed=0, step=i)
            logits = _logits(kind, model, x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        for i in range(warmup):
            step(i)
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            step(warmup + n)
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds and n >= 2:
                cpu = time.process_time() - c0
                LAST_CPU_RATE[0] = n * BATCH * CONTEXT / max(cpu, 1e-9)
                return n * BATCH * CONTEXT / elapsed
    finally:
        torch.set_num_threads(old)


def _worker(args: tuple[str, float]) -> tuple[float, float]:
    size, seconds = args
    torch.set_num_threads(1)
    wall = tokens_per_second("occamlab", SIZES[size], threads=1, seconds=seconds)
    return wall, LAST_CPU_RATE[0]


def sweep_throughput(size: str, seconds: float) -> dict[str, float]:
    """Total tokens/s of one 1-thread worker, then of two 1-thread workers running at once.

    Also tokens per CPU-second: with two free cores the throughput ratio equals twice the ratio
    of per-CPU-second rates (two workers vs one), which other jobs' load does not distort.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        (one, one_cpu), = pool.map(_worker, [(size, seconds)])
    with ctx.Pool(2) as pool:
        both = pool.map(_worker, [(size, seconds)] * 2)
    two = sum(w for w, _ in both)
    two_cpu = sum(c for _, c in both) / 2
    return {"one_worker": one, "two_workers": two, "ratio": two / one,
            "cpu_rate_one": one_cpu, "cpu_rate_two_each": two_cpu,
            "ratio_implied_by_cpu_time": 2 * two_cpu / one_cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two smallest sizes, short rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per timed round")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = dict(list(SIZES.items())[:2]) if args.quick else SIZES
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f} on {os.cpu_count()} cores; torch {torch.__version__}")
    rows = []
    for name, cfg in sizes.items():
        best: dict[tuple[str, int], float] = {}
        cpu: dict[str, float] = {}
        models = {k: _build(k, cfg) for k in ("occamlab", "gpt2")}
        for _ in range(args.rounds):  # interleave so that load changes hit both alike
            for threads in (1, 2):
                for kind in ("occamlab", "gpt2"):
                    tps = tokens_per_second(kind, cfg, threads=threads, seconds=args.seconds,
                                            model=models[kind], warmup=1)
                    best[kind, threads] = max(best.get((kind, threads), 0.0), tps)
                    if threads == 1:  # tokens per CPU-second: robust to other jobs' load
                        cpu[kind] = max(cpu.get(kind, 0.0), LAST_CPU_RATE[0])
        ours = max(best["occamlab", 1], best["occamlab", 2])
        theirs = max(best["gpt2", 1], best["gpt2", 2])
        row = {
            "size": name, "n_params": n_params(cfg), "n_params_non_embedding": n_nonemb(cfg),
            "d_model": cfg.d_model, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "occamlab_1t": best["occamlab", 1], "occamlab_2t": best["occamlab", 2],
            "gpt2_1t": best["gpt2", 1], "gpt2_2t": best["gpt2", 2],
            "ratio_best": ours / theirs,
            "ratio_1t": best["occamlab", 1] / best["gpt2", 1],
            "ratio_2t": best["occamlab", 2] / best["gpt2", 2],
            "occamlab_1t_cpu": cpu["occamlab"], "gpt2_1t_cpu": cpu["gpt2"],
            "ratio_1t_cpu_time": cpu["occamlab"] / cpu["gpt2"],
            "faster_threads": 1 if best["occamlab", 1] >= best["occamlab", 2] else 2,
        }
        rows.append(row)
        print(f"{name:>4}  N_total={row['n_params']:>8}  ours 1t/2t {row['occamlab_1t']:9.0f} "
              f"{row['occamlab_2t']:9.0f}  gpt2 1t/2t {row['gpt2_1t']:9.0f} {row['gpt2_2t']:9.0f}"
              f"  ratio(best) {row['ratio_best']:.2f}  (1t {row['ratio_1t']:.2f}, "
              f"2t {row['ratio_2t']:.2f}; 1t per CPU-second {row['ratio_1t_cpu_time']:.2f})",
              flush=True)
    sweep = {s: sweep_throughput(s, max(args.seconds * 2, 3.0)) for s in ("1e4", "2e5")}
    for s, v in sweep.items():
        print(f"sweep {s}: one 1-thread worker {v['one_worker']:.0f} tok/s, two workers "
              f"{v['two_workers']:.0f} tok/s, ratio {v['ratio']:.2f} (target >= 1.7); "
              f"implied by CPU time {v['ratio_implied_by_cpu_time']:.2f}")
    ok_speed = all(r["ratio_best"] >= 1.2 for r in rows)
    ok_sweep = all(v["ratio"] >= 1.7 for v in sweep.values())
    ok_speed_cpu = all(r["ratio_1t_cpu_time"] >= 1.2 for r in rows)
    ok_sweep_cpu = all(v["ratio_implied_by_cpu_time"] >= 1.7 for v in sweep.values())

    def word(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"targets (wall clock): speed ratio >= 1.2 at every size {word(ok_speed)}; two workers "
          f">= 1.7x {word(ok_sweep)}")
    print(f"targets (CPU time, robust to load): 1-thread speed ratio >= 1.2 {word(ok_speed_cpu)}; "
          f"two workers >= 1.7x {word(ok_sweep_cpu)}")
    result = {
        "benchmark": "train", "tokens_per_step": BATCH * CONTEXT, "context": CONTEXT,
        "vocab": VOCAB, "rounds": args.rounds, "seconds_per_round": args.seconds,
        "load_average_before": load, "load_average_after": os.getloadavg()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "torch": torch.__version__,
        "python": sys.version.split()[0], "sizes": rows, "sweep": sweep,
        "targets_met": {"speed_ratio_1.2": ok_speed, "two_workers_1.7": ok_sweep,
                        "speed_ratio_1.2_cpu_time_1t": ok_speed_cpu,
                        "two_workers_1.7_cpu_time": ok_sweep_cpu},
    }
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "train.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = ["# Training throughput: occamlab vs transformers GPT-2 (tokens/s)", "",
                 f"Context {CONTEXT}, vocab {VOCAB}, {BATCH * CONTEXT} tokens a step; load "
                 f"average {load:.2f} before, {result['load_average_after']:.2f} after.", "",
                 "| size | params | ours 1t | ours 2t | GPT-2 1t | GPT-2 2t | ratio (best) "
                 "| ratio 1t | ratio 2t | ratio 1t per CPU-s |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['size']} | {r['n_params']} | {r['occamlab_1t']:.0f} | "
                         f"{r['occamlab_2t']:.0f} | {r['gpt2_1t']:.0f} | {r['gpt2_2t']:.0f} | "
                         f"{r['ratio_best']:.2f} | {r['ratio_1t']:.2f} | {r['ratio_2t']:.2f} | "
                         f"{r['ratio_1t_cpu_time']:.2f} |")
        lines += ["", "| sweep size | one 1-thread worker | two 1-thread workers | ratio "
                  "| ratio implied by CPU time |", "|---|---|---|---|---|"]
        for s, v in sweep.items():
            lines.append(f"| {s} | {v['one_worker']:.0f} | {v['two_workers']:.0f} | "
                         f"{v['ratio']:.2f} | {v['ratio_implied_by_cpu_time']:.2f} |")
        (RESULTS / "train.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
