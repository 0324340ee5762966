"""Benchmark occamlab.processes against sofic (PyPI, `crosscheck` extra) and plain baselines.

Each row times occamlab and a baseline in the same run and prints the ratio:
- C_mu, h_mu, E of library unifilar processes: occamlab `analyze` vs sofic's EpsilonMachine
  (built from the same matrices with `from_symbol_matrices`), values compared to 1e-9;
- a random 200-state unifilar machine: epsilon-machine construction, C_mu and h_mu;
- SNS truncated at depth 1,000 (target < 1 s) and the Mess3 mixed-state search to 10^6 beliefs;
- sampling a 3-state process, batch 1,000 (target 10^7 symbols/s) vs a pure-python loop.
Writes benchmarks/results/processes.json.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from occamlab.processes import (
    Presentation,
    analyze,
    build_process,
    causal_state_analysis,
    entropy_bits,
    epsilon_machine,
    mixed_state_graph,
    sample,
)

OUT = Path(__file__).resolve().parent / "results" / "processes.json"


def timed(f, repeat: int = 3):
    best, val = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        val = f()
        best = min(best, time.perf_counter() - t)
    return best, val


def sofic_machine(p: Presentation):
    from sofic.examples.epsilon_machines import from_symbol_matrices

    return from_symbol_matrices(list(p.states), list(p.symbols),
                                {s: p.matrices[i] for i, s in enumerate(p.symbols)})


def random_machine(n: int, seed: int) -> Presentation:
    rng = np.random.default_rng(seed)
    T = np.zeros((2, n, n))
    for i in range(n):
        pr = 1.0 if rng.random() < 0.5 else rng.uniform(0.2, 0.8)
        T[0, i, (i + 1) % n] = pr
        if pr < 1:
            T[1, i, rng.integers(n)] = 1 - pr
    return Presentation(T)


def main() -> None:
    rows: list[dict] = []
    try:
        import sofic  # noqa: F401

        have_sofic = True
    except ImportError:
        have_sofic = False
        print("sofic not installed: `pip install sofic` (crosscheck extra); skipping those rows")
    for name in ["golden-mean", "even", "rip", "nemo", "rrxor", "z1r", "binary-markov"]:
        p = build_process(name)
        t_ours, info = timed(lambda p=p: analyze(p))
        row = {"case": f"C_mu,h_mu,E {name}", "ours_s": t_ours}
        if have_sofic:
            def run_sofic(p=p):
                m = sofic_machine(p)
                return m.statistical_complexity(), m.entropy_rate(), m.excess_entropy()
            t_s, (c, h, e) = timed(run_sofic, repeat=1)
            diff = max(abs(c - info.statistical_complexity), abs(h - info.entropy_rate),
                       abs(e - info.excess_entropy))
            row.update(baseline="sofic", baseline_s=t_s, ratio=t_s / t_ours, max_abs_diff=diff)
        rows.append(row)
    p200 = random_machine(200, 1)

    def ours200():
        m = epsilon_machine(p200)
        pi = m.stationary_distribution()
        return m.n_states, float(entropy_bits(pi)), float(pi @ entropy_bits(
            m.emission_probabilities, axis=1))

    t_ours, (n_eps, c_ours, h_ours) = timed(ours200)
    row = {"case": "random 200-state unifilar: eps-machine, C_mu, h_mu", "ours_s": t_ours,
           "n_causal_states": n_eps}
    if have_sofic:
        def run_sofic200():
            m = sofic_machine(p200)
            return m.statistical_complexity(), m.entropy_rate()
        t_s, (c, h) = timed(run_sofic200, repeat=1)
        row.update(baseline="sofic", baseline_s=t_s, ratio=t_s / t_ours,
                   max_abs_diff=max(abs(c - c_ours), abs(h - h_ours)))
    rows.append(row)
    # E of a random 6-state machine (exact here: the epsilon-machine's mixed-state presentation
    # closes); sofic's bidirectional construction is given 30 s in a subprocess.
    p6 = random_machine(6, 1)
    t_e, a6 = timed(lambda: causal_state_analysis(p6, max_states=20_000), repeat=1)
    row = {"case": "E, random 6-state unifilar machine", "ours_s": t_e,
           "E": a6.excess_entropy, "E_exact": a6.excess_entropy_exact}
    if have_sofic:
        here = str(Path(__file__).resolve().parent)
        code = (f"import sys; sys.path.insert(0, {here!r})\n"
                "from bench_processes import random_machine, sofic_machine\n"
                "print(sofic_machine(random_machine(6, 1)).excess_entropy())")
        t0 = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=30)
            row.update(baseline="sofic", baseline_s=time.perf_counter() - t0,
                       baseline_E=out.stdout.strip()[-40:] or out.stderr.strip()[-200:])
        except subprocess.TimeoutExpired:
            row.update(baseline="sofic", baseline_s=">30 (killed)")
    rows.append(row)
    sns_p = build_process("sns")
    t_sns, sns = timed(lambda: causal_state_analysis(sns_p, max_depth=1000))
    rows.append({"case": "SNS eps-machine truncated at depth 1000 (target < 1 s)",
                 "ours_s": t_sns, "C_mu_lower": sns.statistical_complexity,
                 "left_out": sns.left_out})
    t_info, _ = timed(lambda: analyze(sns_p, max_depth=1000), repeat=1)
    rows.append({"case": "SNS full info incl. Blackwell h_mu estimate and bounds",
                 "ours_s": t_info})
    t_m3, g = timed(lambda: mixed_state_graph(build_process("mess3"), max_states=2_500_000),
                    repeat=1)
    rows.append({"case": "Mess3 mixed states (target 10^6)", "ours_s": t_m3,
                 "n_mixed_states": g.n_states, "depth": g.max_depth})
    m3 = build_process("mess3")
    t_samp, _ = timed(lambda: sample(m3, 10_000, batch=1000, seed=0), repeat=1)
    T = m3.matrices
    joint = T.transpose(1, 0, 2).reshape(3, 9).tolist()

    def pure_python(n: int = 200_000) -> list[int]:
        rnd = random.Random(0)
        s, out = 0, []
        for _ in range(n):
            s_k = rnd.choices(range(9), weights=joint[s])[0]
            out.append(s_k // 3)
            s = s_k % 3
        return out

    t_py, _ = timed(pure_python, repeat=1)
    ours_rate, py_rate = 1e7 / t_samp, 2e5 / t_py
    rows.append({"case": "sampling mess3, batch 1000 x 10^4 (target 1e7 sym/s)",
                 "ours_s": t_samp, "symbols_per_s": ours_rate, "baseline": "pure python loop",
                 "baseline_symbols_per_s": py_rate, "ratio": ours_rate / py_rate})
    t_one, _ = timed(lambda: sample(m3, 10_000_000, seed=0), repeat=1)
    rows.append({"case": "sampling mess3, one sequence of 10^7 (stitched blocks)",
                 "ours_s": t_one, "symbols_per_s": 1e7 / t_one, "baseline": "pure python loop",
                 "baseline_symbols_per_s": py_rate, "ratio": 1e7 / t_one / py_rate})
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("case", "ours_s")}
        print(f"{r['case']:55s} ours {r['ours_s']:.4f}s  " + "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
