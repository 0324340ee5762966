"""``occam sweep`` and ``occam runs``: plans, errors as exit code 2, listings and exports."""

from __future__ import annotations

import json

import pandas as pd

from occamlab.cli import main

SPEC = 'experiment = "noop"\n[base]\ny = 1.0\n[axes]\nx = [1, 2, 3]\nfail = ["", "bad"]\n'


def _spec(tmp_path, text: str = SPEC, name: str = "spec.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys) -> None:
    store = tmp_path / "s"
    assert main(["sweep", _spec(tmp_path), "--store", str(store), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Plan: 6 runs of noop" in out and "Nothing was run" in out
    assert not store.exists()


def test_sweep_then_runs_ls_show_export_retry(tmp_path, capsys) -> None:
    store = str(tmp_path / "s")
    spec = _spec(tmp_path)
    rc = main(["sweep", spec, "--store", store, "--jobs", "0", "--no-progress",
               "--json", str(tmp_path / "sweep.json")])
    assert rc == 1  # three runs failed on purpose
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["n_done"] == 3 and summary["n_failed"] == 3
    capsys.readouterr()

    assert main(["runs", "ls", "--store", store, "--json", str(tmp_path / "ls.json")]) == 0
    text = capsys.readouterr().out
    assert "6 runs" in text and "3 done, 3 failed" in text
    runs = json.loads((tmp_path / "ls.json").read_text())["runs"]
    assert len(runs) == 6
    assert all({"id", "status", "config"} <= set(r) for r in runs)
    assert sorted(r["status"] for r in runs) == ["done"] * 3 + ["failed"] * 3
    bad = [r for r in runs if r["status"] == "failed"]
    assert all(r["config"]["fail"] == "bad" and r["error"] == "RuntimeError: bad" for r in bad)

    rid = runs[0]["id"]
    assert main(["runs", "show", rid[:6], "--store", store]) == 0
    assert f"Run {rid}" in capsys.readouterr().out

    for fmt in ("csv", "parquet", "json"):
        out = tmp_path / f"runs.{fmt}"
        assert main(["runs", "export", str(out), "--store", store, "--status", "done"]) == 0
        df = {"csv": pd.read_csv, "parquet": pd.read_parquet,
              "json": lambda p: pd.read_json(p, orient="records")}[fmt](out)
        assert len(df) == 3 and sorted(df["value"]) == [2.0, 3.0, 4.0]
        assert "config.x" in df.columns
    capsys.readouterr()

    # repair the spec's mistake by retrying: still failing (same config), exit code 1
    assert main(["runs", "retry", "--store", store, "--jobs", "0"]) == 1
    assert "failed" in capsys.readouterr().out
    # resuming the sweep skips the done runs
    assert main(["sweep", spec, "--store", store, "--jobs", "0", "--no-progress",
                 "--set", "fail=\"\"", "--json", str(tmp_path / "s2.json")]) == 0
    s2 = json.loads((tmp_path / "s2.json").read_text())
    assert s2["n_runs"] == 3 and s2["n_skipped"] == 3 and s2["n_done"] == 0


def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys) -> None:
    st = ["--store", str(tmp_path / "s"), "--jobs", "0"]
    cases = [
        (["sweep", _spec(tmp_path, 'experiment = "noop"\n[axes]\nxx = [1]\n', "a.toml"), *st],
         "unknown axis 'xx'"),
        (["sweep", _spec(tmp_path, 'experiment = "noop"\n[axes]\nx = []\n', "b.toml"), *st],
         "empty"),
        (["sweep", _spec(tmp_path), "--set", "sed=1", *st], "did you mean 'seed'"),
        (["sweep", _spec(tmp_path), "--set", "nokv", *st], "KEY=VALUE"),
        (["runs", "ls", "--store", str(tmp_path / "none")], "no run store"),
        (["runs", "show", "abc", "--store", str(tmp_path / "none")], "no run store"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, (argv, err)
    store = tmp_path / "old"
    store.mkdir()
    (store / "store.json").write_text('{"format": "occamlab.store", "version": 0}')
    assert main(["sweep", _spec(tmp_path), "--store", str(store), "--jobs", "0"]) == 2
    assert "store format version 0" in capsys.readouterr().err
    assert main(["runs", "ls", "--store", str(store)]) == 2
