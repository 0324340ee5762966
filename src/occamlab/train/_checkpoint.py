"""Checkpoints: a directory of safetensors and JSON; loading never unpickles anything.

Layout of a checkpoint directory::

    model.safetensors      parameters (tied embeddings stored once, under ``wte.weight``)
    config.json            {"format": "occamlab.train/1", "model": ModelConfig, "train": ...}
    optimizer.safetensors  AdamW moments and step counts            (resumable checkpoints only)
    train_state.json       step, loss curve position, best validation loss, param groups (idem)
    trainable.safetensors  the trained tensors by name when model.safetensors cannot give them
                           back (LoRA: the merged model is saved, the adapters A, B are here)

A checkpoint is written into a temporary sibling directory and renamed into place, so a killed
run leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from occamlab._io import atomic_dir, umask
from occamlab.errors import ConfigError, DataError

from ._config import ModelConfig
from ._model import Transformer

__all__ = ["save_checkpoint", "load_checkpoint", "load_trainable", "read_config", "FORMAT",
           "save_training_state", "load_optimizer_state"]

FORMAT = "occamlab.train/1"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Transformer,
    *,
    train_config: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    train_state: dict[str, Any] | None = None,
    trainable: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (and optionally the optimizer and training state) to directory ``path``.

    ``trainable`` (name -> tensor) is written to ``trainable.safetensors`` for resumption.

    Returns the checkpoint path. An existing checkpoint at ``path`` is replaced atomically.
    """
    path = Path(path)
    with atomic_dir(path) as tmp:
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(tensors, tmp / "model.safetensors", metadata={"format": FORMAT})
        meta: dict[str, Any] = {"format": FORMAT, "model": model.config.to_dict()}
        if train_config is not None:
            meta["train"] = train_config
        _write_json(tmp / "config.json", meta)
        _write_state(tmp, optimizer=optimizer, train_state=train_state, trainable=trainable)
    return path


def _write_state(
    folder: Path,
    *,
    optimizer: torch.optim.Optimizer | None,
    train_state: dict[str, Any] | None,
    trainable: dict[str, torch.Tensor] | None,
) -> None:
    """``optimizer.safetensors`` + ``train_state.json`` (with the optimizer's ``param_groups``)
    and ``trainable.safetensors`` into ``folder``."""
    if optimizer is not None:
        sd = optimizer.state_dict()
        opt_tensors = {
            f"{idx}.{key}": (val if torch.is_tensor(val) else torch.tensor(val)).contiguous()
            for idx, st in sd["state"].items()
            for key, val in st.items()
        }
        save_file(opt_tensors, folder / "optimizer.safetensors", metadata={"format": FORMAT})
        state = dict(train_state or {})
        state["param_groups"] = sd["param_groups"]
        _write_json(folder / "train_state.json", state)
    elif train_state is not None:
        _write_json(folder / "train_state.json", dict(train_state))
    if trainable is not None:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in trainable.items()},
            folder / "trainable.safetensors",
            metadata={"format": FORMAT},
        )
    for f in folder.glob("*.safetensors"):  # safetensors writes 0600; a plain open gives this
        os.chmod(f, 0o666 & ~umask())


def save_training_state(
    path: str | os.PathLike[str],
    *,
    optimizer: torch.optim.Optimizer,
    trainable: dict[str, torch.Tensor],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """A resumable training state without the model: the trained tensors by name, the optimizer
    (moments, step counts, param groups) and ``train_state`` JSON, written atomically to the
    directory ``path`` (what :class:`~occamlab.train.LocalTrainingClient` saves). Read back with
    :func:`load_trainable` and :func:`load_optimizer_state`."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        _write_state(tmp, optimizer=optimizer, train_state=train_state, trainable=trainable)
    return path


def _resolve(path: Path) -> Path:
    """A run directory stands for its best checkpoint (or its last one)."""
    if (path / "model.safetensors").is_file():
        return path
    for sub in ("best", "last"):
        if (path / sub / "model.safetensors").is_file():
            return path / sub
    raise DataError(
        f"{str(path)!r} is not a checkpoint (no model.safetensors there or in best/, last/)"
    )


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint (or of a run directory's best checkpoint)."""
    ckpt = _resolve(Path(path))
    try:
        meta = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise DataError(f"{ckpt / 'config.json'}: missing or not JSON ({exc})") from None
    if meta.get("format") != FORMAT or "model" not in meta:
        raise DataError(
            f"{ckpt / 'config.json'}: not an occamlab checkpoint (format {meta.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    meta["_dir"] = str(ckpt)
    return meta


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Transformer, ModelConfig]:
    """Load ``(model, config)`` from a checkpoint directory or a run directory (its ``best/``).

    The model is in eval mode on the CPU. Only safetensors and JSON are read.

    Raises
    ------
    DataError
        Not a checkpoint, its tensors do not match the architecture in ``config.json``
        (another architecture, a truncated file), or a weight is NaN or infinite.
    """
    meta = read_config(path)
    ckpt = Path(meta["_dir"])
    try:
        config = ModelConfig.from_dict(meta["model"])
    except ConfigError as exc:
        raise DataError(f"{ckpt / 'config.json'}: {exc}") from None
    model = Transformer(config, init=False)  # the weights come from the file
    try:
        tensors = load_file(ckpt / "model.safetensors")
    except (SafetensorError, OSError) as exc:
        raise DataError(f"{ckpt / 'model.safetensors'}: cannot read ({exc})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        wrong = [k for k in expected if k in got and expected[k] != got[k]][:3]
        raise DataError(
            f"{ckpt}: tensors do not match the architecture in config.json "
            f"(missing {missing}, unexpected {extra}, wrong shape {wrong})"
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise DataError(f"{ckpt}: the weights are not finite (NaN or infinite values in "
                        f"{', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the training "
                        "that wrote this checkpoint diverged")
    model.load_state_dict(tensors)
    model.eval()
    return model, config


def load_optimizer_state(
    path: str | os.PathLike[str], optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore ``optimizer`` from a resumable checkpoint; returns the JSON training state."""
    ckpt = Path(path)
    try:
        state = json.loads((ckpt / "train_state.json").read_text(encoding="utf-8"))
        tensors = load_file(ckpt / "optimizer.safetensors")
    except (FileNotFoundError, json.JSONDecodeError, SafetensorError) as exc:
        raise DataError(
            f"{ckpt}: cannot resume, optimizer state missing or unreadable ({exc})"
        ) from None
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, val in tensors.items():
        idx, _, name = key.partition(".")
        per_param.setdefault(int(idx), {})[name] = val
    groups = state.pop("param_groups")
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    return state


def load_trainable(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The named trained tensors of a resumable checkpoint (``trainable.safetensors``)."""
    ckpt = Path(path)
    try:
        return load_file(ckpt / "trainable.safetensors")
    except (FileNotFoundError, SafetensorError, OSError) as exc:
        raise DataError(
            f"{ckpt}: cannot resume, trainable.safetensors missing or unreadable ({exc})"
        ) from None
