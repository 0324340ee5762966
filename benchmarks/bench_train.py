"""Training throughput of occamlab's transformer against transformers' GPT-2, in one run.

For four sizes (about 1e4 to 5e6 parameters; context 128, vocabulary 256, 4,096 tokens a step)
it times full training steps (batch sampling, forward, loss, backward, clipping, AdamW) with 1
and 2 torch threads, interleaving the kinds round by round and keeping each one's best round:

- ``gpt2``: ``transformers.GPT2LMHeadModel`` built from an equal config, logits + F.cross_entropy,
  AdamW with torch's defaults on a CPU (the for-each-parameter loop), ``clip_grad_norm_``;
- ``occamlab``: ``occamlab.train.Transformer`` with its own loss (``Transformer.loss``) in the
  SAME step as GPT-2 (same sampling, AdamW, clipping): ratio (a), the model alone;
- ``engine``: the step ``occam train`` runs (occamlab/train/_loop.py: fused AdamW with decay
  groups, ``Transformer.loss``, clipping): ratio (b), against GPT-2 in a standard torch step.

It then measures a sweep of independent 1-thread runs: one worker alone, then two at once.

Targets (issue 4): ours / GPT-2 >= 1.2 at every size (best of 1/2 threads on each side); two
1-thread workers >= 1.7x one 1-thread worker. Writes benchmarks/results/train.json and .md.
The matrix products of occamlab's model run on oneDNN (``occamlab.train.matmul_backend()``);
``--matmul torch`` (``occamlab.train.set_matmul_backend("torch")``) puts them back on torch's
BLAS for comparison.

Usage: python benchmarks/bench_train.py [--quick | --sizes 1e4,2e5] [--no-sweep] [--rounds R]
       [--seconds S] [--matmul onednn|torch] [--no-write]
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

from occamlab.train import (
    ModelConfig,
    TrainConfig,
    Transformer,
    gpt2_config,
    matmul_backend,
    n_params,
    sample_batch,
    set_matmul_backend,
)
from occamlab.train import n_params_non_embedding as n_nonemb
from occamlab.train._loop import _optimizer  # the engine's optimizer, exactly

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


KINDS = ("occamlab", "engine", "gpt2")


def _build(kind: str, cfg: ModelConfig) -> nn.Module:
    if kind in ("occamlab", "engine"):
        return Transformer(cfg, seed=0)
    import transformers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(gpt2_config(cfg))


def _loss(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "gpt2":
        logits = model(input_ids=x).logits
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
    return model.loss(x, y)  # type: ignore[operator]


def _make_optimizer(kind: str, model: nn.Module) -> torch.optim.Optimizer:
    if kind == "engine":
        return _optimizer(model, TrainConfig(lr=1e-4, weight_decay=0.1))
    # torch's defaults on a CPU: neither foreach nor fused (the per-parameter loop)
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)


def tokens_per_second(kind: str, cfg: ModelConfig, *, threads: int, seconds: float,
                      model: nn.Module | None = None, warmup: int = 2) -> float:
    """Training tokens per second of ``kind`` over at least ``seconds`` (after warm-up steps)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model if model is not None else _build(kind, cfg)
        model.train()
        opt = _make_optimizer(kind, model)
        params = [p for p in model.parameters() if p.requires_grad]

        def step(i: int) -> None:
            x, y = sample_batch(DATA, context=CONTEXT, batch_size=BATCH, seed=0, step=i)
            loss = _loss(kind, model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
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


def _worker(args: tuple[str, float, str]) -> tuple[float, float]:
    size, seconds, backend = args
    set_matmul_backend(backend)  # a spawned worker starts from the default
    torch.set_num_threads(1)
    wall = tokens_per_second("engine", SIZES[size], threads=1, seconds=seconds)
    return wall, LAST_CPU_RATE[0]


def sweep_throughput(size: str, seconds: float) -> dict[str, float]:
    """Total tokens/s of one 1-thread worker, then of two 1-thread workers running at once.

    Also tokens per CPU-second: with two free cores the throughput ratio equals twice the ratio
    of per-CPU-second rates (two workers vs one), which other jobs' load does not distort.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        (one, one_cpu), = pool.map(_worker, [(size, seconds, matmul_backend())])
    with ctx.Pool(2) as pool:
        both = pool.map(_worker, [(size, seconds, matmul_backend())] * 2)
    two = sum(w for w, _ in both)
    two_cpu = sum(c for _, c in both) / 2
    return {"one_worker": one, "two_workers": two, "ratio": two / one,
            "cpu_rate_one": one_cpu, "cpu_rate_two_each": two_cpu,
            "ratio_implied_by_cpu_time": 2 * two_cpu / one_cpu}


def _history(result: dict) -> list[dict]:
    """Ratios of this run and of up to 5 earlier runs (same torch and matmul backend)."""
    runs: list[dict] = []
    old = RESULTS / "train.json"
    if old.is_file():
        prev = json.loads(old.read_text())
        if prev.get("torch") == result["torch"] and "history" in prev and (
            prev.get("matmul_backend") == result["matmul_backend"]
        ):
            runs = prev["history"][-5:]
    runs.append({
        "load_average_before": result["load_average_before"],
        "model": {r["size"]: round(r["ratio_model_best"], 3) for r in result["sizes"]},
        "engine": {r["size"]: round(r["ratio_engine_best"], 3) for r in result["sizes"]},
    })
    return runs


def _markdown(result: dict) -> str:
    rows, sweep = result["sizes"], result["sweep"]
    lines = ["# Training throughput: occamlab vs transformers GPT-2 (tokens/s)", "",
             f"Context {CONTEXT}, vocab {VOCAB}, {BATCH * CONTEXT} tokens a step; torch "
             f"{result['torch']}, occamlab matmuls on {result['matmul_backend']}; load average "
             f"{result['load_average_before']:.2f} before, {result['load_average_after']:.2f} "
             "after. (a) model: occamlab's model in GPT-2's step; (b) engine: the step "
             "`occam train` runs (fused AdamW) against GPT-2 in a standard torch step.", "",
             "| size | params | model 1t | model 2t | engine 1t | engine 2t | GPT-2 1t | GPT-2 2t "
             "| (a) ratio best | (b) ratio best | (a) 1t per CPU-s | (b) 1t per CPU-s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['n_params']} | {r['occamlab_1t']:.0f} | {r['occamlab_2t']:.0f} "
            f"| {r['engine_1t']:.0f} | {r['engine_2t']:.0f} | {r['gpt2_1t']:.0f} | "
            f"{r['gpt2_2t']:.0f} | {r['ratio_model_best']:.2f} | {r['ratio_engine_best']:.2f} | "
            f"{r['ratio_model_1t_cpu_time']:.2f} | {r['ratio_engine_1t_cpu_time']:.2f} |")
    lines += ["", "| sweep size | one 1-thread worker | two 1-thread workers | ratio "
              "| ratio implied by CPU time |", "|---|---|---|---|---|"]
    for s, v in sweep.items():
        lines.append(f"| {s} | {v['one_worker']:.0f} | {v['two_workers']:.0f} | "
                     f"{v['ratio']:.2f} | {v['ratio_implied_by_cpu_time']:.2f} |")
    hist = result.get("history", [])
    if len(hist) > 1:
        lines += ["", f"Ratio (best of 1/2 threads) over the last {len(hist)} runs, min-max:", "",
                  "| size | (a) model | (b) engine |", "|---|---|---|"]
        for r in rows:
            a = [h["model"][r["size"]] for h in hist if r["size"] in h["model"]]
            b = [h["engine"][r["size"]] for h in hist if r["size"] in h["engine"]]
            lines.append(f"| {r['size']} | {min(a):.2f}-{max(a):.2f} | {min(b):.2f}-{max(b):.2f} |")
    met = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["targets_met"].items())
    lines += ["", f"Targets: {met}."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two smallest sizes, short rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per timed round")
    ap.add_argument("--sizes", help=f"comma list of sizes to run (of {', '.join(SIZES)})")
    ap.add_argument("--no-sweep", action="store_true", help="skip the two-worker sweep")
    ap.add_argument("--matmul", choices=("onednn", "torch"), default="onednn",
                    help="the model's matmul backend (occamlab.train.set_matmul_backend)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = dict(list(SIZES.items())[:2]) if args.quick else SIZES
    if args.sizes:
        unknown = sorted(set(args.sizes.split(",")) - set(SIZES))
        if unknown:
            ap.error(f"unknown sizes {unknown}; choose from {', '.join(SIZES)}")
        sizes = {k: v for k, v in SIZES.items() if k in args.sizes.split(",")}
    set_matmul_backend(args.matmul)
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f} on {os.cpu_count()} cores; torch {torch.__version__}")
    print(f"occamlab matmul backend: {matmul_backend()}")
    rows = []
    for name, cfg in sizes.items():
        best: dict[tuple[str, int], float] = {}
        cpu: dict[str, float] = {}
        models = {k: _build(k, cfg) for k in KINDS}
        for _ in range(args.rounds):  # interleave so that load changes hit all alike
            for threads in (1, 2):
                for kind in KINDS:
                    tps = tokens_per_second(kind, cfg, threads=threads, seconds=args.seconds,
                                            model=models[kind], warmup=1)
                    best[kind, threads] = max(best.get((kind, threads), 0.0), tps)
                    if threads == 1:  # tokens per CPU-second: robust to other jobs' load
                        cpu[kind] = max(cpu.get(kind, 0.0), LAST_CPU_RATE[0])
        top = {k: max(best[k, 1], best[k, 2]) for k in KINDS}
        row: dict[str, object] = {
            "size": name, "n_params": n_params(cfg), "n_params_non_embedding": n_nonemb(cfg),
            "d_model": cfg.d_model, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
        }
        for k in KINDS:
            row.update({f"{k}_1t": best[k, 1], f"{k}_2t": best[k, 2], f"{k}_1t_cpu": cpu[k]})
        for k, label in (("occamlab", "model"), ("engine", "engine")):
            row.update({
                f"ratio_{label}_best": top[k] / top["gpt2"],
                f"ratio_{label}_1t": best[k, 1] / best["gpt2", 1],
                f"ratio_{label}_2t": best[k, 2] / best["gpt2", 2],
                f"ratio_{label}_1t_cpu_time": cpu[k] / cpu["gpt2"],
            })
        row["faster_threads"] = 1 if best["engine", 1] >= best["engine", 2] else 2
        rows.append(row)
        print(f"{name:>4}  N_total={row['n_params']:>8}  tok/s 1t/2t: model "
              f"{best['occamlab', 1]:8.0f} {best['occamlab', 2]:8.0f}  engine "
              f"{best['engine', 1]:8.0f} {best['engine', 2]:8.0f}  gpt2 {best['gpt2', 1]:8.0f} "
              f"{best['gpt2', 2]:8.0f}  ratio(best) (a) model {row['ratio_model_best']:.2f}  "
              f"(b) engine {row['ratio_engine_best']:.2f}  [1t per CPU-s: "
              f"{row['ratio_model_1t_cpu_time']:.2f} / {row['ratio_engine_1t_cpu_time']:.2f}]",
              flush=True)
    sweep = {} if args.no_sweep else {
        s: sweep_throughput(s, max(args.seconds * 2, 3.0)) for s in ("1e4", "2e5")
    }
    for s, v in sweep.items():
        print(f"sweep {s}: one 1-thread worker {v['one_worker']:.0f} tok/s, two workers "
              f"{v['two_workers']:.0f} tok/s, ratio {v['ratio']:.2f} (target >= 1.7); "
              f"implied by CPU time {v['ratio_implied_by_cpu_time']:.2f}")
    ok = {
        "speed_ratio_1.2_model": all(r["ratio_model_best"] >= 1.2 for r in rows),
        "speed_ratio_1.2_engine": all(r["ratio_engine_best"] >= 1.2 for r in rows),
        "speed_ratio_1.2_model_cpu_time_1t": all(
            r["ratio_model_1t_cpu_time"] >= 1.2 for r in rows),
        "speed_ratio_1.2_engine_cpu_time_1t": all(
            r["ratio_engine_1t_cpu_time"] >= 1.2 for r in rows),
    }
    if sweep:
        ok["two_workers_1.7"] = all(v["ratio"] >= 1.7 for v in sweep.values())
        ok["two_workers_1.7_cpu_time"] = all(
            v["ratio_implied_by_cpu_time"] >= 1.7 for v in sweep.values())
    for key, met in ok.items():
        print(f"target {key}: {'met' if met else 'NOT met'}")
    result = {
        "benchmark": "train", "tokens_per_step": BATCH * CONTEXT, "context": CONTEXT,
        "vocab": VOCAB, "rounds": args.rounds, "seconds_per_round": args.seconds,
        "load_average_before": load, "load_average_after": os.getloadavg()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cores "
                   f"({platform.processor() or 'cpu'})", "torch": torch.__version__,
        "matmul_backend": matmul_backend(),
        "python": sys.version.split()[0], "sizes": rows, "sweep": sweep, "targets_met": ok,
    }
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        history = _history(result)
        result["history"] = history
        (RESULTS / "train.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "train.md").write_text(_markdown(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
