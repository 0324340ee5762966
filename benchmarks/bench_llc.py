"""LLC estimation: occamlab.slt against devinterp 2.0.1, same models, same sampler settings.

Measures, in one run and on one thread: SGLD draws per second (chains x steps / wall time) of
both, and whether their LLC estimates agree within Monte Carlo error. Models: small occamlab
transformers (< 1e5 parameters) briefly trained on a synthetic Markov token stream, sampled
with plain SGLD, explicit n*beta, localization and batch size. devinterp averages its loss over
burn-in steps too and measures L(w*) on its own batches, so its estimate is recomputed here from
its post-burn-in loss trace; both use the same data.

Writes benchmarks/results/llc.json and prints the ratio. Run: .venv/bin/python benchmarks/bench_llc.py
"""

from __future__ import annotations

import json
import math
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
warnings.simplefilter("ignore")

from occamlab.slt import SGLDConfig, estimate_llc  # noqa: E402
from occamlab.train import ModelConfig, Transformer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def markov_tokens(n: int, vocab: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(vocab, 0.3), size=vocab)
    out = np.empty(n, dtype=np.int64)
    out[0] = 0
    for i in range(1, n):
        out[i] = rng.choice(vocab, p=trans[out[i - 1]])
    return out


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train(model: Transformer, windows: torch.Tensor, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, windows.shape[0], (32,), generator=g)
        w = windows[idx]
        loss = token_loss(model(w[:, :-1]), w[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def run_case(name: str, mcfg: ModelConfig, *, lr: float, gamma: float, draws: int, burnin: int,
             chains: int, batch: int, seed: int) -> dict:
    vocab, ctx = mcfg.vocab_size, mcfg.context
    tokens = markov_tokens(40_000, vocab, seed)
    # windows of `ctx` tokens: devinterp feeds a whole window and scores positions 1..ctx-1;
    # occamlab gets the same pairs as (inputs, targets) = (window[:-1], window[1:])
    n_win = tokens.size // ctx
    windows = torch.from_numpy(tokens[: n_win * ctx].reshape(n_win, ctx))
    model = Transformer(mcfg, seed=seed)
    train(model, windows, 1500, seed)
    n_params = sum(p.numel() for p in model.parameters())
    x, y = windows[:, :-1], windows[:, 1:]
    n_tokens = int(y.numel())
    nbeta = n_tokens / math.log(n_tokens)
    steps = chains * (draws + burnin)

    # occamlab: plain SGLD, same settings, vectorized chains and sequential chains
    out = {"name": name, "n_params": n_params, "n_tokens": n_tokens, "nbeta": nbeta, "lr": lr,
           "localization": gamma, "chains": chains, "draws": draws, "burnin": burnin,
           "batch_size": batch}
    for vec in (True, False):
        cfg = SGLDConfig(step_size=lr, gamma=gamma, nbeta=nbeta, n_chains=chains, n_draws=draws,
                         n_burnin=burnin, batch_size=batch, sampler="sgld", vectorize=vec)
        t0 = time.perf_counter()
        res = estimate_llc(model, token_loss, (x, y), cfg, seed=seed, n=n_tokens)
        dt = time.perf_counter() - t0
        key = "occamlab_vmap" if vec else "occamlab_sequential"
        out[key] = {"llc": res.llc, "llc_stderr": res.llc_stderr, "seconds": dt,
                    "draws_per_s": steps / dt, "vectorized": res.vectorized,
                    "temperature": res.temperature, "rhat": res.rhat,
                    "warnings": list(res.warnings)}

    # devinterp 2.0.1: the same model, windows, n beta, lr, localization, batch size
    try:
        from datasets import Dataset
        from devinterp.slt.llc import llc as dv_llc
    except ImportError as exc:  # pragma: no cover - the crosscheck extra is optional
        out["devinterp"] = {"error": f"devinterp not installed: {exc}"}
        return out
    ds = Dataset.from_dict({"input_ids": windows.tolist()}).with_format("torch")
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        dv = dv_llc(model, ds, {}, lr=lr, n_beta=nbeta, num_chains=chains, num_draws=draws,
                    num_burnin_steps=burnin, batch_size=batch, localization=gamma,
                    init_seed=seed, device="cpu", output_path=str(Path(tmp) / "s.zarr"))
        dt = time.perf_counter() - t0
    trace = np.asarray(dv["loss_trace"].values)  # (chain, step), burn-in included
    init = float(dv["init_loss"].values)
    per_chain = nbeta * (trace[:, burnin:].mean(axis=1) - init)
    with torch.no_grad():
        full = float(token_loss(model(x), y))  # L_n(w*) on all the data
    per_chain_full = nbeta * (trace[:, burnin:].mean(axis=1) - full)
    out["devinterp"] = {
        "llc_reported": float(dv["llc_mean"].values),
        "llc_post_burnin": float(per_chain.mean()),
        "llc_stderr": float(per_chain.std(ddof=1) / math.sqrt(chains)),
        # devinterp's L(w*) comes from 32 random batches, one number shared by every chain: its
        # sampling error is invisible in the spread across chains
        "init_loss_offset": nbeta * (init - full),
        "llc_post_burnin_full_init": float(per_chain_full.mean()),
        "seconds": dt, "draws_per_s": steps / dt,
    }
    best = max(out["occamlab_vmap"]["draws_per_s"], out["occamlab_sequential"]["draws_per_s"])
    out["speedup"] = best / out["devinterp"]["draws_per_s"]
    a, b = out["occamlab_vmap"], out["devinterp"]
    se = math.sqrt(a["llc_stderr"] ** 2 + b["llc_stderr"] ** 2)
    out["agreement_z"] = (a["llc"] - b["llc_post_burnin"]) / se if se > 0 else float("nan")
    out["agreement_z_full_init"] = (
        (a["llc"] - b["llc_post_burnin_full_init"]) / se if se > 0 else float("nan")
    )
    return out


def main() -> int:
    cases = [
        ("tiny transformer (d_model 16, 1 layer)",
         ModelConfig(vocab_size=32, context=16, d_model=16, n_layer=1, n_head=2)),
        ("small transformer (d_model 48, 2 layers)",
         ModelConfig(vocab_size=32, context=16, d_model=48, n_layer=2, n_head=4)),
    ]
    results = []
    for name, mcfg in cases:
        r = run_case(name, mcfg, lr=1e-4, gamma=100.0, draws=200, burnin=50, chains=4, batch=32,
                     seed=0)
        results.append(r)
        o, s, d = r["occamlab_vmap"], r["occamlab_sequential"], r.get("devinterp", {})
        print(f"== {name}: {r['n_params']} parameters, n = {r['n_tokens']} tokens")
        print(f"  occamlab vmap       llc {o['llc']:8.2f} +- {o['llc_stderr']:.2f}  "
              f"{o['draws_per_s']:8.1f} draws/s  (temperature {o['temperature']:.2f}, "
              f"R-hat {o['rhat']:.2f})")
        print(f"  occamlab sequential llc {s['llc']:8.2f} +- {s['llc_stderr']:.2f}  "
              f"{s['draws_per_s']:8.1f} draws/s")
        if "error" in d:
            print(f"  devinterp: {d['error']}")
            continue
        print(f"  devinterp 2.0.1     llc {d['llc_post_burnin']:8.2f} +- {d['llc_stderr']:.2f}  "
              f"{d['draws_per_s']:8.1f} draws/s  (its own report, burn-in averaged in: "
              f"{d['llc_reported']:.2f})")
        print(f"  devinterp with L_n(w*) on all data: llc {d['llc_post_burnin_full_init']:8.2f} "
              f"(its 32-batch L(w*) shifts it by {d['init_loss_offset']:+.2f})")
        print(f"  speedup {r['speedup']:.1f}x; difference / combined stderr = "
              f"{r['agreement_z']:.2f} (devinterp's L(w*)), {r['agreement_z_full_init']:.2f} "
              "(full-data L_n(w*))")
    import devinterp

    meta = {"python": sys.version.split()[0], "torch": torch.__version__,
            "devinterp": getattr(devinterp, "__version__", "2.0.1"), "threads": 1,
            "machine": platform.machine()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llc.json").write_text(json.dumps({"meta": meta, "cases": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
