"""Shared fixtures of the training-engine tests: one torch thread, tiny configs."""

from __future__ import annotations

import pytest
import torch

from occamlab.train import DataConfig, ModelConfig, TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_config(**over) -> TrainConfig:
    """A ~10^4-parameter model with one thread; ``over`` are dotted overrides."""
    base = TrainConfig(
        model=ModelConfig(vocab_size=256, context=32, d_model=16, n_layer=2, n_head=2),
        data=DataConfig(corpus="shakespeare", val_fraction=0.1, max_bytes=400_000),
        steps=60, batch_size=8, lr=3e-3, warmup_steps=10, eval_every=20, eval_tokens=2048,
        threads=1,
    )
    return base.replace(**over) if over else base
