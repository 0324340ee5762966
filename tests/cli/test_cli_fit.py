"""``occam fit`` and ``occam demo`` as a user runs them: JSON contracts, errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from occamlab.cli import main
from occamlab.scaling import Chinchilla, load_dataset

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture
def chinchilla_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e10, 6), 6)
    D = np.tile(np.geomspace(1e8, 1e11, 6), 6)
    L = Chinchilla().predict(TRUTH, N=N, D=D) * np.exp(rng.normal(0, 0.005, len(N)))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": N, "tokens": D, "flops": 6 * N * D, "loss": L}).to_csv(path, index=False)
    return path


def test_fit_chinchilla_json_contract(chinchilla_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, png = tmp_path / "fit.json", tmp_path / "fit.png"
    rc = main(["fit", "chinchilla", str(chinchilla_csv), "--n", "params", "--d", "tokens", "--loss", "loss",
               "--json", str(out), "--plot", str(png)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert set(report) == {"fit", "allocation", "extrapolation"} and report["extrapolation"] is None
    d = report["fit"]
    for key in ("form", "params", "ci", "level", "objective", "n_points", "converged", "warnings"):
        assert key in d, key
    assert set(d["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert d["n_points"] == 36 and d["converged"] is True and d["n_starts"] == 4500
    assert d["params"]["alpha"] == pytest.approx(0.34, abs=0.02)
    lo, hi = d["ci"]["alpha"]
    assert d["level"] == 0.95 and lo < d["params"]["alpha"] < hi
    a = report["allocation"]
    assert len(a["compute"]) == len(a["tokens_per_param"]) == len(a["tokens_per_param_ci"]) == 6
    assert png.stat().st_size > 10_000
    assert "Fit: L = E + A / N^alpha" in capsys.readouterr().out


def test_fit_chinchilla_from_flops_to_stdout(chinchilla_csv: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["fit", "chinchilla", str(chinchilla_csv), "--n", "params", "--flops", "flops", "--json", "-"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)  # stdout holds the JSON alone
    assert d["fit"]["params"]["beta"] == pytest.approx(0.28, abs=0.02)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--n", "parms", "--d", "tokens"], "no column 'parms'.*did you mean 'params'"),
        (["--n", "params"], "give --d"),
        (["--n", "params", "--d", "tokens", "--loss", "flops", "--loss-fn", "lsq"], None),
    ],
)
def test_fit_errors_exit_2_without_traceback(chinchilla_csv: Path, args: list, message: str | None) -> None:
    proc = subprocess.run([sys.executable, "-m", "occamlab", "fit", "chinchilla", str(chinchilla_csv), *args],
                          capture_output=True, text=True)
    if message is None:  # a valid (if odd) request succeeds
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    import re

    assert re.search(message, proc.stderr), proc.stderr


def test_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["fit", "power-law", str(empty), "--x", "x"]) == 2
    assert "empty" in capsys.readouterr().err
    bad = tmp_path / "neg.csv"
    pd.DataFrame({"x": [1, 2, 3, 4, 5], "loss": [3.0, -2.0, 2.5, 2.4, 2.3]}).to_csv(bad, index=False)
    assert main(["fit", "power-law", str(bad), "--x", "x"]) == 2
    err = capsys.readouterr().err
    assert "'loss' must be > 0" in err and "rows 1" in err
    assert main(["fit", "power-law", str(tmp_path / "missing.csv"), "--x", "x"]) == 2
    assert "no such file" in capsys.readouterr().err
    out = tmp_path / "never.json"
    assert main(["fit", "power-law", str(bad), "--x", "x", "--json", str(out)]) == 2
    assert not out.exists()  # nothing written half-way


def test_isoflop_power_law_loss_to_loss_downstream(tmp_path: Path) -> None:
    d = load_dataset("porian2024")
    sub = d[(d.dataset == "rw") & (d.hparams == "tuned") & (d.warmup == "short") & (d.param_count == "standard")]
    p = tmp_path / "porian.csv"
    sub.to_csv(p, index=False)
    j = tmp_path / "iso.json"
    assert main(["fit", "isoflop", str(p), "--n", "n", "--flops", "flops", "--bootstrap", "100",
                 "--json", str(j)]) == 0
    assert json.loads(j.read_text())["a"] == pytest.approx(0.497, abs=0.015)
    x = np.geomspace(1e3, 1e7, 12)
    pl = tmp_path / "curve.csv"
    pd.DataFrame({"tokens": x, "loss": 2.0 + 30 * x**-0.4}).to_csv(pl, index=False)
    j2 = tmp_path / "pl.json"
    assert main(["fit", "power-law", str(pl), "--x", "tokens", "--json", str(j2)]) == 0
    assert json.loads(j2.read_text())["params"]["alpha"] == pytest.approx(0.4, rel=1e-5)
    g = load_dataset("gadre2024")
    gp = tmp_path / "gadre.csv"
    g[g.dataset == "rpj"].to_csv(gp, index=False)
    j3 = tmp_path / "l2l.json"
    assert main(["fit", "loss-to-loss", str(gp), "--n", "params", "--d", "tokens", "--x", "loss_c4_val",
                 "--y", "loss_paloma_redpajama", "--json", str(j3)]) == 0
    assert 0.3 < json.loads(j3.read_text())["law"]["params"]["kappa"] < 1.5
    j4 = tmp_path / "down.json"
    assert main(["fit", "downstream", str(gp), "--x", "C", "--metric", "task_piqa", "--metric", "task_bbq",
                 "--json", str(j4)]) == 0
    verdicts = json.loads(j4.read_text())["verdicts"]
    assert [v["metric"] for v in verdicts] == ["task_piqa", "task_bbq"]


def test_help_is_fast_and_lists_commands() -> None:
    proc = subprocess.run([sys.executable, "-m", "occamlab", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "fit" in proc.stdout and "demo" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "occamlab", "fit", "chinchilla", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "example:" in proc.stdout


