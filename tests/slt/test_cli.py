"""`occam llc` and `occam compress` on a tiny occamlab checkpoint; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from occamlab.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from occamlab.train import ModelConfig, Transformer, save_checkpoint

    root = tmp_path_factory.mktemp("ck")
    model = Transformer(ModelConfig(vocab_size=64, context=8, d_model=8, n_layer=1, n_head=2), seed=0)
    save_checkpoint(root / "a", model)
    tokens = root / "tokens.npy"
    np.save(tokens, (np.arange(3000) * 7 % 50).astype(np.int64))
    return root / "a", tokens


def test_llc_checkpoint_json(ckpt: tuple[Path, Path], tmp_path: Path) -> None:
    path, tokens = ckpt
    out = tmp_path / "llc.json"
    rc = main(["llc", str(path), "--data", str(tokens), "--max-tokens", "1024",
               "--set", "n_draws=20", "--set", "n_burnin=5", "--set", "n_chains=2",
               "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["n_tokens"] == 1024 and report["calibration"] is None
    assert report["device"] == "cpu" and report["checkpoints"] == [str(path)]
    d = report["result"]
    for key in ("llc", "llc_stderr", "llc_per_chain", "nbeta", "n", "warnings"):
        assert key in d
    assert d["n"] == 1024  # predicted tokens, not windows
    assert len(d["llc_per_chain"]) == 2


def test_llc_checkpoint_calibrated(ckpt: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path, tokens = ckpt
    out = tmp_path / "llc.json"
    rc = main(["llc", str(path), "--data", str(tokens), "--max-tokens", "512", "--set",
               "n_chains=2", "--calibrate", "--json", str(out)])
    assert rc == 0
    assert "SGLD calibration (pilot runs)" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["calibration"]["recommended"]["step_size"] == report["result"]["config"][
        "step_size"] or report["calibration"]["recommended"]["step_size"] > 0
    d = report["result"]
    assert len(d["llc_per_chain"]) == 2 and d["config"]["n_chains"] == 2
    assert d["config"]["step_size"] > 0 and d["config"]["n_draws"] >= 400  # never shortened


def test_llc_along_checkpoints(ckpt: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, tokens = ckpt
    rc = main(["llc", str(path), str(path), "--data", str(tokens), "--max-tokens", "512",
               "--set", "n_draws=10", "--set", "n_burnin=2", "--set", "n_chains=2", "--json", "-"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)["result"]
    assert len(d["results"]) == 2 and d["results"][0]["llc"] == d["results"][1]["llc"]


def test_compress_checkpoint_json(ckpt: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, tokens = ckpt
    rc = main(["compress", str(path), "--data", str(tokens), "--max-tokens", "1024",
               "--scheme", "rtn-group", "--group-size", "4", "--epsilon", "0.01", "--json", "-"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    d = report["compression"]
    for key in ("n_q", "scheme", "epsilon", "loss_base", "loss_at_n_q"):
        assert key in d
    assert d["scheme"] == "rtn-group" and report["two_part_code"]["n"] == 1024


def test_scheme_names_match_library() -> None:
    from occamlab.cli.compress import SCHEMES as CLI_SCHEMES
    from occamlab.slt import SCHEMES

    assert CLI_SCHEMES == SCHEMES


def test_llc_validate_subset(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["llc", "validate", "--cases", "normal_crossing/w^4", "--json", "-"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["cases"][0]) >= {"name", "family", "n_params", "truth", "estimate", "stderr",
                                  "relative_error"}
    assert {"median_relative_error", "max_relative_error"} <= set(d)


@pytest.mark.parametrize(
    "argv",
    [
        ["llc", "/nonexistent/ckpt", "--data", "x.npy"],
        ["llc", "validate", "--cases", "nope"],
        ["llc", "validate", "--set", "stepsize=1"],
        ["llc", "validate", "--config", "/nonexistent.toml"],
        ["compress", "/nonexistent/ckpt", "--data", "x.npy", "--epsilon", "0.1"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_bad_data_and_epsilon(ckpt: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, tokens = ckpt
    assert main(["llc", str(path)]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert main(["compress", str(path), "--data", str(tokens), "--epsilon", "-1"]) == 2
    assert "epsilon" in capsys.readouterr().err
