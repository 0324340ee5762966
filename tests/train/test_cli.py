"""``occam train`` / ``occam finetune``: configs, summaries, bad input, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from occamlab.cli import main
from occamlab.errors import ConfigError
from occamlab.train import TrainConfig, load_config, n_params

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "train-tiny.toml"
FAST = ["--set", "steps=40", "--set", "eval_every=20", "--set", "threads=1",
        "--set", "data.max_bytes=300000", "--set", "batch_size=8"]
SUMMARY_KEYS = ("n_params", "n_params_non_embedding", "tokens_seen", "final_train_loss",
                "best_val_loss", "tokens_per_second")


def test_tiny_config_is_about_ten_thousand_parameters_on_a_real_corpus() -> None:
    cfg = load_config(TINY)
    assert 5_000 <= n_params(cfg.model) <= 30_000
    assert cfg.data.corpus == "shakespeare"
    assert cfg.steps * cfg.tokens_per_step <= 2_000_000  # < 1 min at the measured rates


def test_train_cli_writes_summary_and_checkpoints(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", str(TINY), *FAST, "--out", str(out),
                 "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert all(k in summary for k in SUMMARY_KEYS)
    assert summary["tokens_seen"] == 40 * 8 * 64
    assert json.loads((tmp_path / "s.json").read_text()) == summary
    assert "best val loss" in capsys.readouterr().out
    assert (out / "best" / "model.safetensors").is_file()
    assert (out / "last" / "optimizer.safetensors").is_file()


def test_config_errors_name_the_key_and_the_nearest(tmp_path, capsys) -> None:
    assert main(["train", "--config", str(TINY), "--set", "stepz=3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'stepz'" in err and "did you mean 'steps'" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nd_modle = 8\n")
    with pytest.raises(ConfigError, match=r"bad.toml.*'model.d_modle'.*did you mean 'd_model'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(None, {"steps": "ten"})
    with pytest.raises(ConfigError, match="divisible"):
        load_config(None, {"model.d_model": "10", "model.n_head": "4"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    assert main(["train", "--config", str(TINY), "--set", "steps=100000", "--out",
                 str(tmp_path / "x")]) == 2
    assert "too small" in capsys.readouterr().err
    assert not (tmp_path / "x" / "summary.json").exists()


def test_config_precedence_and_round_trip() -> None:
    cfg = load_config(TINY, {"lr": "1e-3", "model.d_model": "32", "data.corpus": "python-stdlib"})
    assert cfg.lr == 1e-3 and cfg.model.d_model == 32 and cfg.data.corpus == "python-stdlib"
    assert cfg.model.n_layer == 2  # from the file
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(Exception):  # noqa: B017 - frozen
        cfg.lr = 1.0  # type: ignore[misc]


def test_finetune_cli_lora_rank1_and_full(tmp_path) -> None:
    pre = tmp_path / "pre"
    assert main(["train", "--config", str(TINY), *FAST, "--set", "steps=200", "--out",
                 str(pre)]) == 0
    common = ["--data", "python-stdlib", "--set", "steps=60", "--set", "eval_every=30",
              "--set", "data.max_bytes=300000"]
    assert main(["finetune", str(pre), *common, "--lora-rank", "1", "--out",
                 str(tmp_path / "lora")]) == 0
    assert main(["finetune", str(pre), *common, "--mode", "full", "--out",
                 str(tmp_path / "full")]) == 0
    lora = json.loads((tmp_path / "lora" / "summary.json").read_text())
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert lora["mode"] == "lora-r1" and full["mode"] == "full"
    assert lora["config"]["finetune"]["rank"] == 1
    assert lora["config"]["lr"] == full["config"]["lr"]  # the LoRA multiplier is applied inside
    assert lora["n_params_trainable"] < full["n_params_trainable"] / 10
    # the same data and steps: full fine-tuning reaches a lower loss than rank 1
    assert full["best_val_loss"] < lora["best_val_loss"]
    assert main(["finetune", str(pre), *common, "--mode", "full", "--lora-rank", "2",
                 "--out", str(tmp_path / "bad")]) == 2
    # --resume continues a LoRA fine-tune from its adapters (here: one that already finished)
    assert main(["finetune", str(pre), *common, "--lora-rank", "1", "--resume", "--out",
                 str(tmp_path / "lora")]) == 0
    again = json.loads((tmp_path / "lora" / "summary.json").read_text())
    assert again["best_val_loss"] == lora["best_val_loss"] and again["evals"] == lora["evals"]
    assert main(["train", "--export", str(tmp_path / "lora"), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "config.json").is_file()


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path) -> None:
    args = ["train", "--config", str(TINY), "--set", "steps=1200", "--set", "eval_every=200",
            "--set", "threads=1", "--set", "checkpoint_every=100", "--set", "batch_size=8",
            "--set", "data.max_bytes=1000000", "--no-progress"]
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "occamlab", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state = killed / "last" / "train_state.json"
    deadline = time.monotonic() + 120
    step = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            try:
                step = json.loads(state.read_text())["step"]
            except (json.JSONDecodeError, FileNotFoundError):
                step = 0
            if step >= 200:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = json.loads(state.read_text())["step"]
    assert 200 <= step < 1200 and not (killed / "summary.json").exists()
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert a["final_train_loss"] == b["final_train_loss"]
    assert a["best_val_loss"] == b["best_val_loss"] and a["evals"] == b["evals"]
