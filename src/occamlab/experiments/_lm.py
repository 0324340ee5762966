"""A checkpoint and the language-model windows it is measured on: what the ``llc`` and
``compress`` experiments share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError

from ._refs import resolve_ref

__all__ = ["LMData", "load_lm"]


@dataclass(frozen=True)
class LMData:
    """A loaded model with its disjoint next-token windows: ``n_tokens`` targets in nats."""

    model: Any
    inputs: Any
    targets: Any
    device: str = "cpu"

    @property
    def data(self) -> tuple[Any, Any]:
        return self.inputs, self.targets

    @property
    def n_tokens(self) -> int:
        return int(self.targets.numel())


def check_lm_fields(checkpoint: str, data: str, max_tokens: int, device: str = "auto") -> None:
    """The fields every checkpoint-on-data config has, checked alike."""
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda")
                                           or device.startswith("cuda:")):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not checkpoint:
        raise ConfigError("checkpoint must name a checkpoint or run directory")
    if not data:
        raise ConfigError("data must name a corpus (occam data list) or a .npy token file")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
        raise ConfigError(f"max_tokens must be an integer >= 2, got {max_tokens!r}")


def load_lm(checkpoint: str, data: str, max_tokens: int, *, like: Any = None,
            run_dir: str | Path | None = None, device: str = "cpu") -> LMData:
    """Load ``checkpoint`` (one torch thread: a sweep runs a process per core) and the windows of
    ``data`` at its context; ``like``: a config the checkpoint's context and vocabulary must
    match (the first checkpoint of a trajectory). ``run:`` references and ``process:`` data are
    resolved against the store of ``run_dir``; ``device`` (``auto``: CUDA when torch sees it)
    is where the model and the windows are put."""
    import torch

    from occamlab.train import lm_windows, load_checkpoint, resolve_device

    from .train import data_tokens

    torch.set_num_threads(1)
    model, mcfg = load_checkpoint(resolve_ref(checkpoint, run_dir))
    tokens = data_tokens(data, run_dir)
    corpus: Any = data if tokens is None else tokens
    if like is not None and (mcfg.context, mcfg.vocab_size) != (like.context, like.vocab_size):
        raise ConfigError(f"{checkpoint}: context/vocabulary differ from the first checkpoint")
    x, y = lm_windows(corpus, context=mcfg.context, vocab_size=mcfg.vocab_size,
                      max_tokens=max_tokens)
    dev = resolve_device(device)
    if dev.type != "cpu":
        model, x, y = model.to(dev), x.to(dev), y.to(dev)
    return LMData(model, x, y, str(dev))
