"""Sweep specs: grid and zipped axes, ranges, overrides, and the errors for bad specs."""

from __future__ import annotations

import math

import pytest

from occamlab.errors import ConfigError
from occamlab.experiments import expand_values, get_experiment, load_spec, parse_spec
from occamlab.store import run_id


def test_grid_times_zip_gives_every_combination_once() -> None:
    spec = parse_spec({"experiment": "noop", "base": {"y": 1.0},
                       "axes": {"x": [0, 1, 2], "seed": [0, 1]},
                       "zip": {"sleep": [0.0, 0.0], "fail": ["", ""]}})
    runs = spec.resolve()
    # the zip group's two points are identical configs: deduplicated
    assert len(runs) == 6
    points = {(r.config["x"], r.config["seed"]) for r in runs}
    assert points == {(x, s) for x in (0.0, 1.0, 2.0) for s in (0, 1)}
    assert all(r.config["y"] == 1.0 for r in runs)
    assert all(r.id == run_id("noop", r.config) for r in runs)
    spec = parse_spec({"experiment": "noop", "axes": {"seed": [0, 1]},
                       "zip": {"x": [1, 2, 3], "y": [10, 20, 30]}})
    runs = spec.resolve()
    assert len(runs) == 6
    assert {(r.config["x"], r.config["y"]) for r in runs} == {(1, 10), (2, 20), (3, 30)}


def test_several_zip_groups_multiply() -> None:
    spec = parse_spec({"experiment": "noop", "zip": [{"x": [1, 2], "y": [3, 4]},
                                                     {"seed": [0, 1, 2]}]})
    assert len(spec.resolve()) == 6


def test_log_and_lin_ranges() -> None:
    vals = expand_values("lr", {"log": [1e-4, 1e-2], "num": 3})
    assert vals == pytest.approx([1e-4, 1e-3, 1e-2], rel=1e-12)
    ints = expand_values("steps", {"log": [1e4, 1e6], "num": 5}, integer=True)
    assert ints == [10000, 31623, 100000, 316228, 1000000]
    assert expand_values("x", {"lin": [0, 1], "num": 5}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert expand_values("n", {"lin": [1, 2], "num": 5}, integer=True) == [1, 2]  # merged
    assert expand_values("n", {"log": [1, 100], "num": 3, "int": False}) == [1.0, 10.0, 100.0]
    # geometric spacing: constant ratio
    v = expand_values("x", {"log": [2.0, 2e5], "num": 6})
    ratios = [b / a for a, b in zip(v, v[1:], strict=False)]
    assert ratios == pytest.approx([10.0] * 5)
    # the config field's type decides rounding (train's steps is an int)
    spec = parse_spec({"experiment": "train", "axes": {"steps": {"log": [1e2, 1e4], "num": 3},
                                                       "lr": {"log": [1e-4, 1e-2], "num": 3}}})
    assert spec.axes["steps"] == [100, 1000, 10000]
    assert all(isinstance(v, float) for v in spec.axes["lr"])
    for bad in ({"log": [0, 1], "num": 3}, {"log": [1, 2]}, {"log": [1, 2], "num": 0},
                {"lin": [1], "num": 2}, {"log": [1, 2], "lin": [1, 2], "num": 2},
                {"geom": [1, 2], "num": 2}):
        with pytest.raises(ConfigError, match="axis 'x'"):
            expand_values("x", bad)


def test_unknown_keys_suggest_the_nearest() -> None:
    with pytest.raises(ConfigError, match=r"unknown axis 'model.dmodel' \(did you mean 'model.d_model'"):
        parse_spec({"experiment": "train", "axes": {"model.dmodel": [8, 16]}})
    with pytest.raises(ConfigError, match=r"unknown base key 'model.n_layers' \(did you mean 'model.n_layer'"):
        parse_spec({"experiment": "train", "base": {"model": {"n_layers": 2}}})
    with pytest.raises(ConfigError, match=r"unknown key 'axis' \(did you mean 'axes'"):
        parse_spec({"experiment": "noop", "axis": {"x": [1]}})
    with pytest.raises(ConfigError, match=r"unknown experiment 'trian' \(did you mean 'train'"):
        parse_spec({"experiment": "trian"})
    with pytest.raises(ConfigError, match=r"--set key 'sed' \(did you mean 'seed'"):
        parse_spec({"experiment": "noop"}, overrides={"sed": 1})
    with pytest.raises(ConfigError, match="missing 'experiment'"):
        parse_spec({"axes": {"x": [1]}})


def test_empty_sweep_and_bad_zips_are_errors() -> None:
    with pytest.raises(ConfigError, match="empty"):
        parse_spec({"experiment": "noop", "axes": {"x": []}}).resolve()
    with pytest.raises(ConfigError, match="empty"):
        parse_spec({"experiment": "noop", "zip": {"x": [], "y": []}, "axes": {"seed": [1]}}
                   ).resolve()
    with pytest.raises(ConfigError, match="equal lengths"):
        parse_spec({"experiment": "noop", "zip": {"x": [1, 2], "y": [1]}})
    with pytest.raises(ConfigError, match="both a grid axis and a zipped axis"):
        parse_spec({"experiment": "noop", "axes": {"x": [1]}, "zip": {"x": [1]}})


def test_every_run_is_validated_before_running() -> None:
    # d_model 12 is not divisible by n_head 8: the run is named in the error
    spec = parse_spec({"experiment": "train", "base": {"model": {"n_head": 8}},
                       "axes": {"model.d_model": [16, 12]}})
    with pytest.raises(ConfigError, match=r"run \(model.d_model=12\).*divisible"):
        spec.resolve()
    with pytest.raises(ConfigError, match=r"run \(sleep=-1.0\)"):
        parse_spec({"experiment": "noop", "axes": {"sleep": [0.0, -1.0]}}).resolve()
    with pytest.raises(ConfigError, match=r"run \(x='a'\): x must be a number, got 'a'"):
        parse_spec({"experiment": "noop", "axes": {"x": ["a"]}}).resolve()


def test_overrides_pin_axes_and_replace_base(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('experiment = "noop"\nretries = 2\ntime_limit = 5\n[base]\ny = 1.0\n'
                    '[axes]\nx = [1, 2, 3]\nseed = [0, 1]\n[zip]\nsleep = [0.0]\nfail = [""]\n')
    spec = load_spec(path)
    assert len(spec.resolve()) == 6 and spec.retries == 2 and spec.time_limit == 5.0
    spec = load_spec(path, {"x": "2", "y": "3.5"})
    runs = spec.resolve()
    assert len(runs) == 2
    assert {r.config["x"] for r in runs} == {2.0} and {r.config["y"] for r in runs} == {3.5}
    with pytest.raises(ConfigError, match="zipped axis"):
        load_spec(path, {"sleep": "1"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("experiment = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    for bad, msg in (("retries = -1", "retries"), ("time_limit = 0", "time_limit")):
        (tmp_path / "b.toml").write_text(f'experiment = "noop"\n{bad}\n')
        with pytest.raises(ConfigError, match=msg):
            load_spec(tmp_path / "b.toml")


def test_the_smoke_sweep_resolves_to_twenty_train_runs() -> None:
    from pathlib import Path

    spec = load_spec(Path(__file__).resolve().parents[2] / "configs" / "sweep-smoke.toml")
    runs = spec.resolve()
    assert len(runs) == 20
    assert len({r.id for r in runs}) == 20
    steps = sorted({r.config["steps"] for r in runs})
    assert len(steps) == 5 and steps[0] == 60 and steps[-1] == 600
    assert math.isclose(steps[1] / steps[0], (600 / 60) ** 0.25, rel_tol=0.02)
    assert get_experiment("train").keys()[0] == "model.vocab_size"
