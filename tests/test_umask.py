"""Files and folders occamlab writes get what a plain ``open``/``mkdir`` would give under the
user's umask (a shared group folder can read them), not ``mkstemp``'s or safetensors' 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from occamlab._io import atomic_dir, atomic_write_text


@pytest.fixture
def group_umask():
    old = os.umask(0o002)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_atomic_writes_follow_the_umask(tmp_path: Path, group_umask: None) -> None:
    f = atomic_write_text(tmp_path / "a" / "x.json", "{}\n")
    assert _mode(f) == 0o664
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "y").write_text("y")
    assert _mode(tmp_path / "d") == 0o775


def test_checkpoints_follow_the_umask(tmp_path: Path, group_umask: None) -> None:
    pytest.importorskip("torch")
    from occamlab.train import ModelConfig, Transformer, save_checkpoint

    model = Transformer(ModelConfig(vocab_size=16, context=4, d_model=4, n_layer=1, n_head=1))
    ck = save_checkpoint(tmp_path / "ck", model, train_config={"seed": 0})
    assert _mode(ck) == 0o775
    assert {p.name: _mode(p) for p in ck.iterdir()} == {
        "model.safetensors": 0o664, "config.json": 0o664}
