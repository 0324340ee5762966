"""The ``evaluate`` experiment: the held-out loss of a checkpoint on other data (nats per token).

The loss is the mean next-token cross-entropy over the disjoint windows of the first
``max_tokens + 1`` tokens of ``data``, the windows the training loop evaluates on
(:func:`occamlab.train.lm_windows`), so a model's loss on its own held-out set is its training
run's validation loss. ``data`` may be a corpus, a ``.npy`` token file or a ``run:`` reference to
one (a ``transfer-data`` run's ``val.npy``): the transfer experiment measures models trained on
one distribution on another's held-out set (Brandfonbrener et al.'s train-to-test loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from occamlab._config import ConfigBase

from ._lm import check_lm_fields, load_lm
from ._registry import RunOutput

__all__ = ["Config", "run"]


@dataclass(frozen=True)
class Config(ConfigBase):
    """A checkpoint (or a run's ``best``), the data and how much of it."""

    checkpoint: str = ""
    data: str = ""
    max_tokens: int = 16_384
    device: str = "auto"

    def __post_init__(self) -> None:
        check_lm_fields(self.checkpoint, self.data, self.max_tokens, self.device)


def run(config: Config, run_dir: Path) -> RunOutput:
    import torch

    from occamlab.train import token_loss

    lm = load_lm(config.checkpoint, config.data, config.max_tokens, run_dir=run_dir,
                 device=config.device)
    lm.model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, lm.inputs.shape[0], 64):
            x, y = lm.inputs[i:i + 64], lm.targets[i:i + 64]
            total += float(token_loss(lm.model(x), y)) * y.numel()
    return RunOutput({"loss": total / lm.n_tokens, "n_tokens": lm.n_tokens,
                      "device": lm.device})
