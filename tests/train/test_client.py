"""The training-client protocol and its local implementation (LoRA on the torch engine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occamlab.errors import ConfigError, DataError
from occamlab.train import (
    AdamParams,
    Datum,
    LocalTrainingClient,
    TrainingClient,
    Transformer,
    finetune,
    lr_at,
    prepare_split,
    sample_batch,
)

from .conftest import tiny_config

pytest.importorskip("peft")


def _batch(x: torch.Tensor, y: torch.Tensor) -> list[Datum]:
    w = np.full(x.shape[1], 1.0 / x.numel(), np.float32)  # the mean loss, as the engine's
    return [Datum(x[i].numpy(), y[i].numpy(), w) for i in range(x.shape[0])]


def _adam(cfg, step: int) -> AdamParams:
    lr = lr_at(step, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
               min_lr_ratio=cfg.min_lr_ratio)
    return AdamParams(lr, cfg.beta1, cfg.beta2, 1e-8, cfg.weight_decay, cfg.grad_clip)


def test_local_client_is_the_engines_lora_fine_tune() -> None:
    # the same batches, schedule and AdamW through the protocol give the engine's losses
    cfg = tiny_config(steps=25, eval_every=25, **{"data.max_bytes": 200_000})
    base = Transformer(cfg.model, seed=3)
    merged, res = finetune(base, cfg, mode="lora", lora_rank=2, lora_lr_scale=1.0)
    client = LocalTrainingClient(base, rank=2, seed=cfg.seed)
    assert isinstance(client, TrainingClient)
    split = prepare_split(cfg)
    losses = []
    for s in range(cfg.steps):
        x, y = sample_batch(split.train, context=32, batch_size=cfg.batch_size, seed=cfg.seed,
                            step=s)
        fb = client.forward_backward(_batch(x, y))
        step = client.optim_step(_adam(cfg, s))
        losses.append(fb.result().loss)
        assert step.result() is None
    assert np.mean(losses) == pytest.approx(res.final_train_loss, rel=1e-6)  # last eval_every
    ours = client.merged()
    probe = torch.arange(32)[None] % 256
    assert torch.allclose(ours(probe), merged(probe), atol=1e-4)
    assert client.n_trainable == res.n_params_trainable


def test_logprobs_weights_and_order() -> None:
    model = Transformer(tiny_config().model, seed=0)
    client = LocalTrainingClient(model, rank=1)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, size=(3, 33))
    batch = [Datum(r[:-1], r[1:]) for r in rows] + [Datum(rows[0, :9], rows[0, 1:10])]
    done: list[str] = []
    f1 = client.forward(batch)
    f2 = client.forward(batch[:1])
    f1.add_done_callback(lambda _: done.append("first"))
    f2.add_done_callback(lambda _: done.append("second"))
    assert done == ["first", "second"]  # in submission order
    out = f1.result()
    assert [lp.shape for lp in out.logprobs] == [(32,), (32,), (32,), (9,)]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.from_numpy(rows[:, :-1])), -1)
    want = logp.gather(-1, torch.from_numpy(rows[:, 1:])[..., None])[..., 0].numpy()
    np.testing.assert_allclose(np.stack(out.logprobs[:3]), want, atol=1e-5)  # B = 0 at start
    np.testing.assert_allclose(out.logprobs[3], want[0, :9], atol=1e-5)  # a shorter sequence
    assert out.loss == pytest.approx(out.nll_sum)  # unit weights: the summed NLL
    assert f2.result().loss == pytest.approx(-float(want[0].sum()), rel=1e-5)


def test_resume_restores_the_optimizer_so_the_next_step_is_the_same(tmp_path) -> None:
    cfg = tiny_config()
    model = Transformer(cfg.model, seed=1)
    rng = np.random.default_rng(1)
    batches = [[Datum(r[:-1], r[1:], np.full(32, 1 / 128, np.float32))
                for r in rng.integers(0, 256, size=(4, 33))] for _ in range(6)]

    def steps(client, bs):
        out = []
        for b in bs:
            fb = client.forward_backward(b)
            client.optim_step(AdamParams(3e-2, weight_decay=0.1))
            out.append(fb.result().loss)
        return out

    straight = LocalTrainingClient(model, rank=2, state_dir=tmp_path)
    first = steps(straight, batches[:3])
    path = straight.save_state("step3").result()
    rest = steps(straight, batches[3:])

    resumed = LocalTrainingClient(model, rank=2, seed=7, state_dir=tmp_path)  # another init
    assert resumed.load_state(path).result() is None
    assert resumed.steps == 3
    assert steps(resumed, batches[3:]) == rest  # bit for bit, the step after included

    # a resume that drops the optimizer's moments (weights only) takes another step
    from occamlab.train._loop import _restore_trainable

    dropped = LocalTrainingClient(model, rank=2, state_dir=tmp_path)
    _restore_trainable(dropped._model, tmp_path / "step3")
    again = steps(dropped, batches[3:])
    assert again[0] == rest[0] and again[1] != rest[1]
    assert len(first) == 3


def test_errors_name_the_problem(tmp_path) -> None:
    model = Transformer(tiny_config().model, seed=0)
    with pytest.raises(ConfigError, match="rank"):
        LocalTrainingClient(model, rank=0)
    with pytest.raises(ConfigError, match="one positive length"):
        Datum(np.arange(3), np.arange(4))
    with pytest.raises(ConfigError, match="weights"):
        Datum(np.arange(3), np.arange(3), np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ConfigError, match="learning_rate"):
        AdamParams(-1.0)
    with pytest.raises(ConfigError, match="beta1"):
        AdamParams(1e-3, beta1=1.0)
    client = LocalTrainingClient(model, rank=1)
    with pytest.raises(ConfigError, match="loss"):
        client.forward([Datum(np.arange(3), np.arange(3))], loss="ppo").result()
    with pytest.raises(ConfigError, match="non-empty list"):
        client.forward([]).result()
    with pytest.raises(DataError, match="vocabulary"):
        client.forward([Datum(np.array([300]), np.array([1]))]).result()
    with pytest.raises(ConfigError, match="state_dir"):
        client.save_state("x").result()
    with pytest.raises(DataError):
        LocalTrainingClient(model, rank=1, state_dir=tmp_path).load_state(
            str(tmp_path / "missing")).result()
