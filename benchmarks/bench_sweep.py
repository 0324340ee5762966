"""Scheduling overhead of a sweep per run, against a plain loop over the same runs, in one run.

The ``noop`` experiment does nothing, so the time a sweep spends per run beyond the plain loop
(``noop.run(config, folder)`` called N times in a Python loop, each in a fresh folder) is pure
overhead: the store (pending record, claim, temporary folder, provenance, result, status, rename)
and the scheduler. Measured:

- ``inline``: ``run_sweep(..., jobs=0)`` (everything in this process);
- ``pool``: ``run_sweep(..., jobs=2)``, the local process pool, worker start-up included;
- ``resume``: the same sweep again, every run already done (the cost of skipping);
- ``ray``: ``run_sweep(..., jobs=2, backend=RayBackend(2))`` on a local Ray instance with two
  CPUs, started before the clock (its start-up is reported apart), when Ray is installed
  (``--no-ray`` leaves it out); its ratio to the local pool is measured in the same run.

Target (issue 6): overhead per run < 50 ms locally. Writes benchmarks/results/sweep.json.

Usage: python benchmarks/bench_sweep.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from occamlab.experiments import noop, parse_spec, run_sweep

RESULTS = Path(__file__).resolve().parent / "results"


def _runs(n: int, tag: str) -> list:
    return parse_spec({"experiment": "noop", "base": {"fail": "", "flaky": "", "log": tag},
                       "axes": {"x": list(range(n))}}).resolve()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray backend row")
    args = ap.parse_args()
    n = args.runs
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        runs = _runs(n, "")
        t0 = time.perf_counter()
        for i, r in enumerate(runs):
            folder = work / "loop" / str(i)
            folder.mkdir(parents=True)
            noop.run(noop.make_config(r.config), folder)
        loop = time.perf_counter() - t0

        res_inline = run_sweep(runs, work / "inline", jobs=0)
        res_resume = run_sweep(runs, work / "inline", jobs=0)
        res_pool = run_sweep(runs, work / "pool", jobs=2)
        assert res_inline.n_done == n and res_resume.n_skipped == n and res_pool.n_done == n
        res_ray, ray_start = None, None
        if not args.no_ray:
            try:
                import ray  # noqa: F401
            except ImportError:
                print("Ray is not installed: no Ray row (pip install 'occamlab[ray]')")
            else:
                from occamlab.experiments import RayBackend

                t0 = time.perf_counter()
                be = RayBackend(2)
                ray_start = time.perf_counter() - t0
                try:
                    res_ray = run_sweep(runs, work / "ray", backend=be)
                finally:
                    be.close()
                assert res_ray.n_done == n
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def per_run(t: float) -> float:
        return 1e3 * (t - loop) / n

    out = {
        "runs": n,
        "loop_s": loop,
        "inline_s": res_inline.elapsed_s,
        "pool_jobs2_s": res_pool.elapsed_s,
        "resume_s": res_resume.elapsed_s,
        "overhead_ms_per_run": {"inline": per_run(res_inline.elapsed_s),
                                "pool_jobs2": per_run(res_pool.elapsed_s),
                                "resume_skip": 1e3 * res_resume.elapsed_s / n},
        "ratio_to_loop": {"inline": res_inline.elapsed_s / loop,
                          "pool_jobs2": res_pool.elapsed_s / loop},
        "target_ms": 50.0,
        "ray_start_s": ray_start,
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
    }
    if res_ray is not None:
        out["ray_jobs2_s"] = res_ray.elapsed_s
        out["overhead_ms_per_run"]["ray_jobs2"] = per_run(res_ray.elapsed_s)
        out["ratio_to_loop"]["ray_jobs2"] = res_ray.elapsed_s / loop
        out["ray_to_pool"] = res_ray.elapsed_s / res_pool.elapsed_s
    o = out["overhead_ms_per_run"]
    print(f"{n} noop runs: plain loop {loop * 1e3:.1f} ms in all ({loop * 1e3 / n:.2f} ms/run)")
    print(f"  sweep inline (jobs 0): {res_inline.elapsed_s:.2f} s, overhead {o['inline']:.2f} ms/run,"
          f" {out['ratio_to_loop']['inline']:.0f}x the loop")
    print(f"  sweep pool (jobs 2):   {res_pool.elapsed_s:.2f} s, overhead {o['pool_jobs2']:.2f} "
          f"ms/run (worker start-up included), {out['ratio_to_loop']['pool_jobs2']:.0f}x the loop")
    print(f"  resume (all done):     {o['resume_skip']:.2f} ms/run to skip")
    if res_ray is not None:
        print(f"  Ray (2 CPUs, local):   {res_ray.elapsed_s:.2f} s, overhead {o['ray_jobs2']:.2f} "
              f"ms/run, {out['ray_to_pool']:.1f}x the local pool; Ray start-up {ray_start:.1f} s "
              "(not included)")
    ok = max(o["inline"], o["pool_jobs2"]) < 50.0
    print(f"  target < 50 ms/run: {'met' if ok else 'NOT met'} "
          f"(load average {out['load_average'][0]:.1f} on {os.cpu_count()} cores)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
