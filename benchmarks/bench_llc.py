"""LLC estimation: occamlab.slt against devinterp 2.0.1, same models, same sampler settings.

For each model (a deep linear network at a known true parameter, and two small occamlab
transformers briefly trained on a synthetic Markov token stream; all < 1e5 parameters) and for
a CPU budget of one and of two threads (torch.set_num_threads on
both sides; occamlab gives its budget to chains, devinterp to its kernels), both estimate the LLC
with plain SGLD, explicit n*beta, localization, batch size, chains, burn-in and draws, over
``--seeds`` seeds. Reported:

* draws per second (chains x steps / wall time of the whole call) of each, the ratio at one
  thread and best against best; and the floor: one forward + backward pass of a chain's batch,
  the least any sampler must spend per draw, with the ratio devinterp's time per draw allows;
* agreement: the mean of each tool's estimates over seeds and its standard error across seeds
  (the honest Monte Carlo error: it includes the batch sequence, which the spread across chains
  of one run does not), and their difference in units of the combined error.

Batch schedule. occamlab draws every chain's minibatches i.i.d. with replacement. devinterp's
default replays one shuffled epoch (``itertools.cycle``) and shows every chain the same batches.
For the like-for-like comparison devinterp is given, per seed, an i.i.d. resample of the windows
exactly as long as the run needs (so its loader never cycles) and independent chains; its
default schedule is also run once per model and reported. Both estimates use ``L_n(w*)`` on all
the data (devinterp's own ``init_loss`` comes from 32 batches; its report also averages the
burn-in steps in, both shown for the record).

Writes benchmarks/results/llc.json. Run: .venv/bin/python benchmarks/bench_llc.py [--seeds R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.simplefilter("ignore")

from occamlab.slt import SGLDConfig, estimate_llc  # noqa: E402
from occamlab.train import ModelConfig, Transformer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TRANSFORMER = {"lr": 1e-4, "gamma": 100.0, "draws": 200, "burnin": 50, "chains": 4, "batch": 32}
DLN = {"lr": 1e-3, "gamma": 10.0, "draws": 200, "burnin": 50, "chains": 4, "batch": 256}


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


class Case:
    """A model at w*, its data for occamlab (x, y, loss) and for devinterp (rows, loss)."""

    def __init__(self, name, model, loss_fn, x, y, n, rows, dv_loss, settings):  # type: ignore[no-untyped-def]
        self.name, self.model, self.loss_fn, self.x, self.y, self.n = name, model, loss_fn, x, y, n
        self.rows, self.dv_loss, self.s = rows, dv_loss, settings
        self.nbeta = n / math.log(n)
        with torch.no_grad():
            self.full = float(loss_fn(model(x), y))  # L_n(w*) on all the data


def transformer_case(name: str, mcfg: ModelConfig) -> Case:
    tokens = markov_tokens(40_000, mcfg.vocab_size, 0)
    ctx = mcfg.context
    n_win = tokens.size // ctx
    windows = torch.from_numpy(tokens[: n_win * ctx].reshape(n_win, ctx))
    model = Transformer(mcfg, seed=0)
    train(model, windows, 1500, 0)
    # devinterp feeds a whole window and scores positions 1..ctx-1; occamlab gets the same
    # pairs as (inputs, targets) = (window[:-1], window[1:])
    x, y = windows[:, :-1], windows[:, 1:]
    return Case(name, model, token_loss, x, y, int(y.numel()), windows, None, TRANSFORMER)


def dln_case() -> Case:
    from occamlab.slt import make_dln

    km = make_dln([20, 15, 10, 15, 20], 3, n=2000, seed=0)
    x, y = km.data
    rows = torch.cat([x, y], dim=1)
    width, d_in = rows.shape[1], x.shape[1]

    def dv_loss(model, ids):  # type: ignore[no-untyped-def]
        # devinterp wants a per-token loss (batch, seq - 1); each example's loss, repeated
        ids = ids.to(x.dtype)
        per = 0.5 * (model(ids[:, :d_in]) - ids[:, d_in:]).pow(2).sum(1)
        return per.unsqueeze(1).expand(-1, width - 1)

    return Case(f"deep linear network 20-15-10-15-20, rank 3 (truth {float(km.truth.lambda_):g})",
                km.model, km.loss_fn, x, y, x.shape[0], rows, dv_loss, DLN)


def ours(c: Case, seed: int, draws: int | None = None):  # type: ignore[no-untyped-def]
    s = c.s
    cfg = SGLDConfig(step_size=s["lr"], gamma=s["gamma"], nbeta=c.nbeta, n_chains=s["chains"],
                     n_draws=draws or s["draws"], n_burnin=s["burnin"], batch_size=s["batch"],
                     sampler="sgld")
    t0 = time.perf_counter()
    res = estimate_llc(c.model, c.loss_fn, (c.x, c.y), cfg, seed=seed, n=c.n)
    return res, time.perf_counter() - t0


def devinterp_run(c: Case, seed: int, *, iid: bool, draws: int | None = None):  # type: ignore[no-untyped-def]
    from datasets import Dataset
    from devinterp.slt.llc import llc as dv_llc

    s = {**c.s, "draws": draws or c.s["draws"]}
    steps = s["draws"] + s["burnin"]
    if iid:  # an i.i.d. resample exactly as long as one chain's run: the loader never cycles
        g = torch.Generator().manual_seed(10_000 + seed)
        rows = c.rows[torch.randint(0, c.rows.shape[0], (steps * s["batch"],), generator=g)]
    else:
        rows = c.rows
    ds = Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch", dtype=rows.dtype)
    extra = {"loss_fn": c.dv_loss} if c.dv_loss is not None else {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        dv = dv_llc(c.model, ds, {}, lr=s["lr"], n_beta=c.nbeta, num_chains=s["chains"],
                    num_draws=s["draws"], num_burnin_steps=s["burnin"], batch_size=s["batch"],
                    localization=s["gamma"], init_seed=seed, device="cpu",
                    match_sampling_input_ids_across_chains=not iid,
                    output_path=str(Path(tmp) / "s.zarr"), **extra)
        dt = time.perf_counter() - t0
    trace = np.asarray(dv["loss_trace"].values)  # (chain, step), burn-in included
    per_chain = c.nbeta * (trace[:, s["burnin"]:].mean(axis=1) - c.full)
    own = c.nbeta * (trace[:, s["burnin"]:].mean(axis=1) - float(dv["init_loss"].values))
    return {"llc": float(per_chain.mean()), "llc_own_init": float(own.mean()),
            "llc_reported": float(dv["llc_mean"].values),
            "chain_stderr": float(per_chain.std(ddof=1) / math.sqrt(len(per_chain)))}, dt


def floor_seconds(c: Case) -> float:
    """Best time of one plain forward + backward pass on one chain's minibatch."""
    g = torch.Generator().manual_seed(0)
    best = float("inf")
    ps = list(c.model.parameters())
    for _ in range(60):
        idx = torch.randint(0, c.x.shape[0], (c.s["batch"],), generator=g)
        t0 = time.perf_counter()
        loss = c.loss_fn(c.model(c.x[idx]), c.y[idx])
        torch.autograd.grad(loss, ps)
        best = min(best, time.perf_counter() - t0)
    return best


LONG_DRAWS = 1000


def marginal(c: Case, short_draws: int) -> dict:
    """Steady-state draws per second at one thread: the extra draws of a long run (LONG_DRAWS
    per chain) over the default run, divided by the extra time. It leaves out each tool's fixed
    costs (devinterp's include two gc.collect() per chain, about 0.2 s each in this process)."""
    s = c.s
    extra = s["chains"] * (LONG_DRAWS - s["draws"])
    best_o = best_d = float("inf")
    for seed in range(2):
        _, short_o = ours(c, seed)
        _, long_o = ours(c, seed, LONG_DRAWS)
        best_o = min(best_o, long_o - short_o)
        _, short_d = devinterp_run(c, seed, iid=True)
        _, long_d = devinterp_run(c, seed, iid=True, draws=LONG_DRAWS)
        best_d = min(best_d, long_d - short_d)
    r = {"occamlab_draws_per_s": extra / best_o, "devinterp_draws_per_s": extra / best_d}
    r["ratio"] = r["occamlab_draws_per_s"] / r["devinterp_draws_per_s"]
    return r


def mean_se(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else float("nan")


def run_case(c: Case, seeds: int) -> dict:
    s = c.s
    draws = s["chains"] * (s["draws"] + s["burnin"])
    out: dict = {"name": c.name, "n_params": sum(p.numel() for p in c.model.parameters()),
                 "n": c.n, "nbeta": c.nbeta, "L_n": c.full, **s, "threads": {}}
    est_o: list[float] = []
    est_d: list[float] = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        t_o, t_d = [], []
        vectorized, backend = None, ""
        for seed in range(seeds):  # interleaved, so that load changes hit both alike
            res, dt = ours(c, seed)
            vectorized, backend = res.vectorized, res.chain_backend
            t_o.append(dt)
            dv, dt = devinterp_run(c, seed, iid=True)
            t_d.append(dt)
            if threads == 1:
                est_o.append(res.llc)
                est_d.append(dv["llc"])
        t = {"occamlab_draws_per_s": draws / min(t_o), "devinterp_draws_per_s": draws / min(t_d),
             "floor_draws_per_s": 1.0 / floor_seconds(c), "occamlab_vectorized": vectorized,
             "occamlab_chain_backend": backend}
        t["ratio"] = t["occamlab_draws_per_s"] / t["devinterp_draws_per_s"]
        out["threads"][threads] = t
    torch.set_num_threads(1)
    out["marginal_1_thread"] = marginal(c, draws)
    t1, t2 = out["threads"][1], out["threads"][2]
    best_o = max(t1["occamlab_draws_per_s"], t2["occamlab_draws_per_s"])
    best_d = max(t1["devinterp_draws_per_s"], t2["devinterp_draws_per_s"])
    out["speedup_1_thread"] = t1["ratio"]
    out["speedup_best"] = best_o / best_d
    out["speedup_floor_1_thread"] = t1["floor_draws_per_s"] / t1["devinterp_draws_per_s"]
    mo, so = mean_se(est_o)
    md, sd = mean_se(est_d)
    out["occamlab"] = {"estimates": est_o, "mean": mo, "stderr": so}
    out["devinterp_iid"] = {"estimates": est_d, "mean": md, "stderr": sd}
    out["agreement_z"] = (mo - md) / math.sqrt(so**2 + sd**2)
    dflt, _ = devinterp_run(c, 0, iid=False)
    out["devinterp_default_schedule_seed0"] = dflt
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = [
        dln_case,
        lambda: transformer_case("tiny transformer (d_model 16, 1 layer)", ModelConfig(
            vocab_size=32, context=16, d_model=16, n_layer=1, n_head=2)),
        lambda: transformer_case("small transformer (d_model 48, 2 layers)", ModelConfig(
            vocab_size=32, context=16, d_model=48, n_layer=2, n_head=4)),
    ]
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f} on {os.cpu_count()} cores")
    results = []
    for make in cases:
        c = make()
        r = run_case(c, args.seeds)
        name = c.name
        results.append(r)
        t1, t2 = r["threads"][1], r["threads"][2]
        o, d, dd = r["occamlab"], r["devinterp_iid"], r["devinterp_default_schedule_seed0"]
        print(f"== {name}: {r['n_params']} parameters, n = {r['n']}; settings {c.s}")
        for th, t in ((1, t1), (2, t2)):
            print(f"  {th} thread(s): occamlab {t['occamlab_draws_per_s']:7.1f} draws/s, devinterp "
                  f"{t['devinterp_draws_per_s']:7.1f}, ratio {t['ratio']:.2f}x; one forward+"
                  f"backward alone: {t['floor_draws_per_s']:.0f}/s; occamlab vectorized: "
                  f"{t['occamlab_vectorized']}")
        print(f"  speedup: {r['speedup_1_thread']:.2f}x at one thread, {r['speedup_best']:.2f}x "
              f"best against best (one plain forward+backward per draw would allow "
              f"{r['speedup_floor_1_thread']:.1f}x at one thread); occamlab's chains: "
              f"{t1['occamlab_chain_backend']}")
        mg = r["marginal_1_thread"]
        print(f"  steady state (one thread, extra draws of a {LONG_DRAWS}-draw run): occamlab "
              f"{mg['occamlab_draws_per_s']:.0f}/s, devinterp {mg['devinterp_draws_per_s']:.0f}/s,"
              f" ratio {mg['ratio']:.2f}x")
        print(f"  llc over {args.seeds} seeds: occamlab {o['mean']:.1f} +- {o['stderr']:.1f}, "
              f"devinterp (i.i.d. batches) {d['mean']:.1f} +- {d['stderr']:.1f}; z = "
              f"{r['agreement_z']:.2f}")
        print(f"  devinterp's default schedule (seed 0): {dd['llc']:.1f} with L_n(w*), "
              f"{dd['llc_own_init']:.1f} with its own init_loss, reported {dd['llc_reported']:.1f}")
    import devinterp

    meta = {"python": sys.version.split()[0], "torch": torch.__version__,
            "devinterp": getattr(devinterp, "__version__", "2.0.1"), "seeds": args.seeds,
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "load_average_before": load, "load_average_after": os.getloadavg()[0]}
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "llc.json").write_text(json.dumps({"meta": meta, "cases": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
