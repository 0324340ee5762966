"""Infinite-state processes analysed to a precision: SNS by its recurrent causal states, Mess3 by
bounds that tighten with depth, machines that synchronize only asymptotically."""

from __future__ import annotations

import time

import numpy as np
import pytest

from occamlab.cli import main
from occamlab.errors import ConfigError
from occamlab.processes import Presentation, analyze, build_process, entropy_bits


def sns_renewal_machine(n: int = 200) -> Presentation:
    """SNS (p = q = 1/2) causal states k = 0 .. n (1s since the last 0), Pr(0 | k) = k/(2(k+1)),
    with the last state looping on itself: a finite unifilar surrogate whose exact E differs from
    SNS's by far less than 1e-12 (the states past n carry probability ~2^-n)."""
    T = np.zeros((2, n + 1, n + 1))
    for k in range(n + 1):
        p0 = k / (2 * (k + 1))
        T[0, k, 0] = p0
        T[1, k, min(k + 1, n)] = 1 - p0
    return Presentation(T)


def test_sns_default_is_fast_and_brackets_the_exact_values() -> None:
    t = time.perf_counter()
    info = analyze(build_process("sns"))
    assert time.perf_counter() - t < 5.0  # was 82 s and 6.6 GB before the deepening search
    assert info.truncated and info.left_out <= 1e-6 and info.n_mixed_states < 1000
    k = np.arange(400, dtype=float)
    pi = (k + 1) / 2.0 ** (k + 2)
    assert info.statistical_complexity == pytest.approx(float(entropy_bits(pi)), abs=1e-9)
    surrogate = analyze(sns_renewal_machine())
    lo, hi = info.entropy_rate_bounds
    assert lo <= surrogate.entropy_rate <= hi and hi - lo < 1e-9
    lo, hi = info.excess_entropy_bounds
    assert lo <= surrogate.excess_entropy <= hi and hi - lo < 1e-6
    assert info.excess_entropy == pytest.approx(surrogate.excess_entropy, abs=1e-6)


@pytest.mark.parametrize("params", [{"p": 0.9, "q": 0.1}, {"p": 0.6, "q": 0.3}])
def test_sns_other_parameters_reach_the_precision(params) -> None:
    info = analyze(build_process("sns", params), precision=1e-8)
    if info.truncated and info.entropy_rate_bounds is not None:
        assert info.left_out <= 1e-8
        lo, hi = info.entropy_rate_bounds
        assert hi - lo < 1e-7
        elo, ehi = info.excess_entropy_bounds
        assert elo <= info.excess_entropy <= ehi and ehi - elo < 1e-6


def test_mess3_bounds_tighten_with_depth() -> None:
    widths, lows = [], []
    for cap in (500, 5_000, 50_000):
        info = analyze(build_process("mess3"), max_states=cap)
        assert info.statistical_complexity is None and info.n_causal_states is None
        hlo, hhi = info.entropy_rate_bounds
        elo, ehi = info.excess_entropy_bounds
        assert hlo <= info.entropy_rate <= hhi and elo <= info.excess_entropy <= ehi
        assert ehi <= np.log2(3) + 1e-9  # E <= H[R] for any presentation
        widths.append(hhi - hlo)
        lows.append(elo)
    assert widths[0] > widths[1] > widths[2] and lows[0] <= lows[1] <= lows[2]


def test_asymptotically_synchronizing_machine_stops_at_the_precision() -> None:
    # RRXOR with its 1/2s perturbed: the machine's mixed states never recur exactly.
    rr = build_process("rrxor")
    T = rr.matrices.copy()
    T[:, 0] *= np.array([1.02, 0.98])[:, None]  # state S emits 0 a little more often
    p = Presentation(T, symbols=rr.symbols)
    for precision in (1e-4, 1e-8):
        info = analyze(p, precision=precision)
        assert info.n_causal_states == 5 and not info.excess_entropy_exact
        lo, hi = info.excess_entropy_bounds
        assert hi - lo <= precision and lo <= info.excess_entropy <= hi
    coarse = analyze(p, precision=1e-3)
    assert coarse.n_mixed_states < info.n_mixed_states  # cost grows with the precision asked


def test_precision_validated_and_on_the_command_line(capsys) -> None:
    with pytest.raises(ConfigError, match="precision"):
        analyze(build_process("sns"), precision=0.0)
    assert main(["process", "info", "sns", "--precision", "1e-9", "--json", "-"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["precision"] == 1e-9 and d["left_out"] <= 1e-9 and d["truncated"] is True
