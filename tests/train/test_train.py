"""The training loop against known truth: memorisation, a Markov chain's entropy rate, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from occamlab.errors import ConfigError, DataError
from occamlab.train import (
    TrainingDiverged,
    TrainResult,
    evaluate,
    iter_windows,
    load_checkpoint,
    lr_at,
    train,
)

from .conftest import tiny_config


def markov_chain(P: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Sample n symbols of the chain with transition matrix P (rows sum to 1)."""
    rng = np.random.default_rng(seed)
    cum = P.cumsum(axis=1)
    u = rng.random(n)
    x = np.empty(n, dtype=np.int64)
    x[0] = 0
    for i in range(1, n):
        x[i] = min(int(np.searchsorted(cum[x[i - 1]], u[i])), P.shape[0] - 1)
    return x


def stationary(P: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


P3 = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])


def _true_window_loss(P: np.ndarray, tokens: np.ndarray, *, context: int, max_tokens: int) -> float:
    """Loss of the true predictor on the same windows as ``evaluate`` (first token: stationary law)."""
    pi, total, count = stationary(P), 0.0, 0
    for x, y in iter_windows(tokens, context=context, batch_size=64, max_tokens=max_tokens):
        x, y = x.numpy(), y.numpy()
        total -= np.log(P[x, y]).sum()
        count += y.size
    return total / count + 0.0 * pi.sum()


def test_entropy_rate_closed_form() -> None:
    # analytic h_mu = -sum_i pi_i sum_j P_ij ln P_ij, checked against a long empirical average
    pi = stationary(P3)
    h = -(pi[:, None] * P3 * np.log(P3)).sum()
    x = markov_chain(P3, 200_000, seed=1)
    assert abs(-np.log(P3[x[:-1], x[1:]]).mean() - h) < 0.01


def test_model_approaches_markov_entropy_rate() -> None:
    x = markov_chain(P3, 200_000, seed=0)
    cfg = tiny_config(**{"model.vocab_size": 3, "model.context": 32, "steps": 300,
                         "batch_size": 16, "lr": 1e-2, "warmup_steps": 20, "eval_every": 100,
                         "eval_tokens": 16384})
    model, res = train(cfg, tokens=x)
    val = x[-int(round(x.size * 0.1)):]
    truth = _true_window_loss(P3, val, context=32, max_tokens=16384)
    # the model cannot beat the true predictor (beyond noise) and gets within 0.02 nats of it
    assert truth - 0.01 < res.best_val_loss < truth + 0.02
    pi = stationary(P3)
    h = -(pi[:, None] * P3 * np.log(P3)).sum()
    assert abs(res.best_val_loss - h) < 0.05  # and so near the entropy rate in nats


@pytest.mark.slow
def test_model_reaches_entropy_rate_tightly() -> None:
    x = markov_chain(P3, 600_000, seed=2)
    cfg = tiny_config(**{"model.vocab_size": 3, "model.context": 64, "model.d_model": 32,
                         "steps": 1500, "batch_size": 32, "lr": 5e-3, "warmup_steps": 100,
                         "eval_every": 250, "eval_tokens": 65536, "data.max_epochs": 10.0})
    _, res = train(cfg, tokens=x)
    val = x[-int(round(x.size * 0.1)):]
    truth = _true_window_loss(P3, val, context=64, max_tokens=65536)
    assert truth - 0.005 < res.best_val_loss < truth + 0.005


def test_tiny_model_memorises_a_fixed_sequence() -> None:
    seq = np.random.default_rng(0).integers(0, 32, 64)
    tokens = np.tile(seq, 40)
    cfg = tiny_config(**{"model.vocab_size": 32, "model.context": 16, "model.d_model": 32,
                         "model.n_layer": 1, "steps": 300, "batch_size": 16, "lr": 1e-2,
                         "eval_every": 100, "eval_tokens": 512, "data.max_epochs": 100.0})
    model, res = train(cfg, tokens=tokens, val_tokens=tokens)
    x = torch.from_numpy(tokens[:16 * 8].reshape(8, 16))
    with torch.no_grad():
        pred = model(x).argmax(-1)[:, 1:]
    # every next token with at least one token of context is reproduced
    assert torch.equal(pred, torch.from_numpy(tokens[1:16 * 8 + 1].reshape(8, 16))[:, 1:])
    assert res.final_train_loss < 0.15


def test_lr_schedule() -> None:
    kw = {"lr": 1.0, "steps": 110, "warmup_steps": 10, "min_lr_ratio": 0.1}
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half-way down the cosine
    assert lr_at(110, **kw) == pytest.approx(0.1)


def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    cfg = tiny_config(steps=30)
    _, a = train(cfg)
    _, b = train(cfg)
    _, c = train(cfg.replace(seed=1))
    assert a.evals == b.evals and a.final_train_loss == b.final_train_loss
    assert a.evals != c.evals


def test_run_directory_and_result(tmp_path, result_contract) -> None:
    cfg = tiny_config(steps=40, checkpoint_every=20)
    model, res = train(cfg, out=tmp_path)
    result_contract(res)
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("n_params", "n_params_non_embedding", "tokens_seen", "final_train_loss",
                "best_val_loss", "tokens_per_second"):
        assert key in summary
    assert summary["tokens_seen"] == 40 * 8 * 32
    lines = [json.loads(s) for s in (tmp_path / "loss_curve.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == list(range(1, 41))
    assert [ln["step"] for ln in lines if "val_loss" in ln] == [20, 40]
    loaded, mcfg = load_checkpoint(tmp_path)
    assert mcfg == cfg.model
    assert all(torch.equal(p, q) for p, q in zip(loaded.parameters(), model.parameters(),
                                                 strict=True))
    for name in ("model.safetensors", "optimizer.safetensors", "train_state.json", "config.json"):
        assert (tmp_path / "last" / name).is_file()


def test_snapshots_keep_the_model_at_each_listed_step(tmp_path) -> None:
    from occamlab.train import snapshot_path

    cfg = tiny_config(steps=30, eval_every=10, snapshot_steps=[20, 10, 30])
    assert cfg.snapshot_steps == (10, 20, 30)  # sorted, a tuple
    train(cfg, out=tmp_path)
    snaps = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert snaps == ["step-10", "step-20", "step-30"]
    # the last snapshot is the model at the end of training (= last/), earlier ones differ
    last, _ = load_checkpoint(tmp_path / "last")
    s30, _ = load_checkpoint(snapshot_path(tmp_path, 30))
    s10, _ = load_checkpoint(snapshot_path(tmp_path, 10))
    assert all(torch.equal(p, q) for p, q in zip(s30.parameters(), last.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(s10.parameters(), last.parameters(),
                                                     strict=True))
    with pytest.raises(ConfigError, match="snapshot_steps"):
        tiny_config(steps=30, snapshot_steps=[40])
    with pytest.raises(ConfigError, match="snapshot_steps"):
        tiny_config(snapshot_steps=[0])


class _Kill(Exception):
    pass


def test_resume_after_kill_gives_the_same_final_loss(tmp_path) -> None:
    cfg = tiny_config(steps=60, checkpoint_every=20, patience=0)
    _, full = train(cfg, out=tmp_path / "a")

    def kill_at_45(event) -> None:
        if event.step == 45:
            raise _Kill

    with pytest.raises(_Kill):
        train(cfg, out=tmp_path / "b", callback=kill_at_45)
    assert json.loads((tmp_path / "b" / "last" / "train_state.json").read_text())["step"] == 40
    _, resumed = train(cfg, out=tmp_path / "b", resume=True)
    assert resumed.final_train_loss == full.final_train_loss
    assert resumed.best_val_loss == full.best_val_loss and resumed.evals == full.evals
    curve_a = (tmp_path / "a" / "loss_curve.jsonl").read_text()
    assert (tmp_path / "b" / "loss_curve.jsonl").read_text() == curve_a
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="differs"):
        train(cfg.replace(lr=1e-3), out=tmp_path / "b", resume=True)


def test_early_stopping_keeps_the_validation_optimum(tmp_path) -> None:
    seq = np.random.default_rng(0).integers(0, 32, 64)
    other = np.random.default_rng(1).integers(0, 32, 4096)
    cfg = tiny_config(**{"model.vocab_size": 32, "model.context": 16, "steps": 400,
                         "batch_size": 16, "lr": 1e-2, "eval_every": 10, "eval_tokens": 1024,
                         "patience": 3, "data.max_epochs": 1000.0})
    model, res = train(cfg, tokens=np.tile(seq, 20), val_tokens=other, out=tmp_path)
    assert res.stopped_early and res.steps < 400
    assert res.best_step == res.steps - 30
    assert res.best_val_loss == min(e[3] for e in res.evals)
    assert evaluate(model, other, context=16, max_tokens=1024) == pytest.approx(res.best_val_loss)
    best, _ = load_checkpoint(tmp_path / "best")
    assert evaluate(best, other, context=16, max_tokens=1024) == pytest.approx(res.best_val_loss)


def test_nan_loss_stops_saves_and_names_the_step(tmp_path) -> None:
    cfg = tiny_config(steps=20, lr=1e30, grad_clip=0.0, warmup_steps=0)
    with pytest.raises(TrainingDiverged, match=r"at step \d+") as err:
        train(cfg, out=tmp_path)
    step = int(str(err.value).split("at step ")[1].split(";")[0])
    state = json.loads((tmp_path / "last" / "train_state.json").read_text())
    assert state["step"] == step
    assert not (tmp_path / "summary.json").exists()


def test_divergence_never_saves_non_finite_weights(tmp_path) -> None:
    # lr 1e300 makes the first AdamW update infinite: the weights themselves are not finite
    cfg = tiny_config(steps=20, lr=1e300, grad_clip=0.0, warmup_steps=0, checkpoint_every=0)
    with pytest.raises(TrainingDiverged, match="no longer finite, so .* was not updated"):
        train(cfg, out=tmp_path)
    assert not (tmp_path / "last").exists()


def test_bad_data_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="too small.*max_epochs"):
        train(tiny_config(steps=10_000))
    with pytest.raises(DataError, match="out of range"):
        train(tiny_config(**{"model.vocab_size": 3}), tokens=np.arange(5000) % 4)
    with pytest.raises(DataError, match="not installed|neither"):
        train(tiny_config(**{"data.corpus": "no-such-corpus"}))


def test_result_from_dict_round_trip() -> None:
    _, res = train(tiny_config(steps=20))
    assert TrainResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res


def _ngram_cross_entropy(train_tokens: np.ndarray, val_tokens: np.ndarray, order: int) -> float:
    """Held-out cross-entropy (nats) of an add-one-smoothed unigram (1) or bigram (2) byte model."""
    if order == 1:
        p = (np.bincount(train_tokens, minlength=256) + 1.0) / (train_tokens.size + 256.0)
        return float(-np.log(p[val_tokens]).mean())
    counts = np.ones((256, 256))
    np.add.at(counts, (train_tokens[:-1], train_tokens[1:]), 1.0)
    P = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log(P[val_tokens[:-1], val_tokens[1:]]).mean())


def test_short_run_on_shakespeare_beats_the_unigram_model() -> None:
    from occamlab.train import load_corpus, split_tokens

    cfg = tiny_config(steps=300, batch_size=16, lr=1e-2, eval_every=100, eval_tokens=8192)
    _, res = train(cfg)
    sp = split_tokens(load_corpus("shakespeare", max_bytes=400_000), val_fraction=0.1, context=32)
    assert res.best_val_loss < _ngram_cross_entropy(sp.train, sp.val, 1) - 0.3


@pytest.mark.slow
def test_tiny_config_beats_the_bigram_model() -> None:
    from pathlib import Path

    from occamlab.train import load_config, load_corpus, split_tokens

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "train-tiny.toml",
                      {"threads": "1"})
    _, res = train(cfg)
    sp = split_tokens(load_corpus("shakespeare"), val_fraction=cfg.data.val_fraction,
                      context=cfg.model.context)
    assert res.best_val_loss < _ngram_cross_entropy(sp.train, sp.val, 2)


def test_valid_and_warnings_are_the_results_own_diagnostics() -> None:
    _, res = train(tiny_config(steps=20))
    assert res.valid and res.warnings == ()
    assert "valid" not in res.to_dict()  # properties, not stored fields
    assert "valid" in str(res)
    d = res.to_dict()
    short = TrainResult.from_dict(d | {"steps": 10})
    assert not short.valid and short.warnings == (
        "the run did 10 of its 20 steps without early stopping",)
    assert TrainResult.from_dict(d | {"steps": 10, "stopped_early": True}).valid
    nan = TrainResult.from_dict(d | {"best_val_loss": float("nan"), "evals": []})
    assert not nan.valid
    assert nan.warnings == ("no evaluation was recorded", "a recorded loss is NaN or infinite")


def test_progress_without_a_terminal_prints_one_line_per_evaluation(capsys) -> None:
    train(tiny_config(steps=40), progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split()[1] for ln in lines] == ["20/40", "40/40"]
    assert all(" train " in ln and " val " in ln and "tok/s" in ln for ln in lines)
