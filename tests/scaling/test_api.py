"""The house rules of the public surface: seeds, status flags, the compute helpers, public names."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scaling_synth import SMALL_GRID, chinchilla_data

import occamlab.scaling as scaling
from occamlab.errors import ConfigError, DataError
from occamlab.scaling import (
    Chinchilla,
    FitResult,
    PowerLaw,
    default_budgets,
    extrapolation_check,
    fit,
    fit_isoflop,
    fit_loss_to_loss,
    leave_one_group_out,
    optimal_allocation,
    tokens_from_flops,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "occamlab"


@pytest.fixture(scope="module")
def small_fit() -> FitResult:
    return fit(Chinchilla(), chinchilla_data(0, n=60), starts=SMALL_GRID)


def _seeded_calls(res: FitResult) -> dict[str, Callable[[Any], Any]]:
    data = chinchilla_data(1, n=40)
    return {
        "fit": lambda s: fit(Chinchilla(), data, starts=SMALL_GRID, bootstrap=5, seed=s),
        "fit_isoflop": lambda s: fit_isoflop({"N": [1.0], "C": [1.0], "loss": [1.0]}, seed=s),
        "optimal_allocation": lambda s: optimal_allocation(res, [1e20], seed=s),
        "fit_loss_to_loss": lambda s: fit_loss_to_loss(data, x="loss", y="loss", seed=s),
        "extrapolation_check": lambda s: extrapolation_check(Chinchilla(), data, by="N", seed=s),
        "leave_one_group_out": lambda s: leave_one_group_out(Chinchilla(), data, group="N", seed=s),
    }


@pytest.mark.parametrize("seed", [-1, True, 1.5, "0", None, 2**63])
@pytest.mark.parametrize("name", ["fit", "fit_isoflop", "optimal_allocation", "fit_loss_to_loss",
                                  "extrapolation_check", "leave_one_group_out"])
def test_bad_seeds_are_config_errors(small_fit: FitResult, name: str, seed: Any) -> None:
    with pytest.raises(ConfigError, match="seed"):
        _seeded_calls(small_fit)[name](seed)


def test_same_seed_same_numbers_numpy_integers_too(small_fit: FitResult) -> None:
    a = optimal_allocation(small_fit, [1e20], seed=3)
    b = optimal_allocation(small_fit, [1e20], seed=np.int64(3))
    assert a == b
    assert optimal_allocation(small_fit, [1e20], seed=4).n_opt_ci != a.n_opt_ci


def test_fit_valid_follows_its_diagnostics(small_fit: FitResult) -> None:
    assert small_fit.converged and small_fit.valid
    assert "valid" not in small_fit.to_dict()  # a property: serialization is unchanged
    x = np.geomspace(1, 1e4, 30)
    lin = scaling.CustomForm("slope", lambda p, x: p["a"] + p["b"] * x,
                             [scaling.Param("a"), scaling.Param("b", 1.0, 5.0)], space="linear",
                             starts=[[0.0, 2.0]])
    at_bound = fit(lin, {"x": x, "y": 5 - 0.001 * x}, target="y")
    assert at_bound.converged and at_bound.at_bound == ("b",) and not at_bound.valid
    warned = dataclasses.replace(small_fit, warnings=("something",))
    assert not warned.valid
    assert not dataclasses.replace(small_fit, converged=False).valid


def test_composite_results_are_valid_when_their_parts_are(small_fit: FitResult) -> None:
    data = pd.DataFrame(chinchilla_data(3, n=60, noise=0.0))
    data["y"] = 2.2 + 1.3 * (data["loss"] - 1.69)
    l2l = fit_loss_to_loss(data, x="loss", y="y", starts=SMALL_GRID)
    assert l2l.warnings == (*l2l.fit_x.warnings, *l2l.fit_y.warnings, *l2l.law.warnings)
    assert l2l.valid == (l2l.fit_x.valid and l2l.fit_y.valid and l2l.law.valid)
    grid = pd.DataFrame(chinchilla_data(4, n=80))
    ex = extrapolation_check(Chinchilla(), grid.assign(N=grid["N"].round(-7)), by="N", n_holdout=1,
                             starts=SMALL_GRID, loss_fn="lsq")
    assert ex.fits[0].loss_fn == "lsq"  # loss_fn reaches every refit
    assert ex.valid == all(f.valid for f in ex.fits)
    iso = fit_isoflop(pd.DataFrame({"N": np.tile(np.geomspace(1e7, 1e9, 5), 2),
                                    "C": np.repeat([1e18, 1e19], 5),
                                    "loss": [3.2, 3.0, 2.95, 3.0, 3.2, 3.0, 2.8, 2.7, 2.75, 2.9]}),
                      bootstrap=0)
    assert iso.valid == (not iso.warnings)
    alloc = optimal_allocation(small_fit, [1e20])
    assert alloc.valid and alloc.warnings == ()
    no_cov = dataclasses.replace(small_fit, covariance=None, bootstrap=None)
    undefined = optimal_allocation(no_cov, [1e20])
    assert not undefined.valid and "undefined" in undefined.warnings[0]


def test_tokens_from_flops() -> None:
    df = pd.DataFrame({"params": [1e6, 2e6, 4e6], "flops": [6e12, 6e12, 2.4e13]})
    before = df.copy()
    np.testing.assert_array_equal(tokens_from_flops(df, n="params", flops="flops"), [1e6, 5e5, 1e6])
    pd.testing.assert_frame_equal(df, before)
    with pytest.raises(DataError, match=r"'flops' must be positive.*data rows 2 "):
        tokens_from_flops({"N": [1.0, 2.0], "flops": [6.0, -6.0]}, n="N", flops="flops")
    with pytest.raises(DataError, match="did you mean 'params'"):
        tokens_from_flops(df, n="parms", flops="flops")


def test_default_budgets(small_fit: FitResult) -> None:
    b = default_budgets(small_fit)
    c = 6 * np.array(small_fit.inputs["N"]) * np.array(small_fit.inputs["D"])
    assert len(b) == 6 and np.all(np.diff(b) > 0)
    assert b[0] == float(f"{c.min():.2g}") and b[-1] == float(f"{100 * c.max():.2g}")
    assert len(default_budgets(small_fit, n_budgets=3, span=1.0)) == 3
    power = fit(PowerLaw(), {"x": np.geomspace(1, 1e4, 12), "y": 2 + 3 * np.geomspace(1, 1e4, 12) ** -0.5},
                target="y")
    with pytest.raises(ConfigError, match="inputs N and D"):
        default_budgets(power)


def test_public_names_and_no_private_imports_outside_scaling() -> None:
    for name in ("column", "plot_fit", "plot_isoflop", "plot_extrapolation", "tokens_from_flops",
                 "default_budgets"):
        assert name in scaling.__all__ and callable(getattr(scaling, name)), name
    assert all(hasattr(scaling, n) for n in scaling.__all__)
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "scaling"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(SRC)}: {m}" for m in mods if m.startswith("occamlab.scaling._")]
    assert not bad, bad
