"""Typed, frozen configuration of a training run: model shape, data, optimisation.

Precedence is defaults < TOML file < ``--set key=value`` (ARCHITECTURE.md, convention 2). Unknown
keys are a :class:`~occamlab.errors.ConfigError` that names the key, where it came from and the
nearest allowed key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from occamlab._config import ConfigBase, config_from_dict, load_dotted
from occamlab.errors import ConfigError

__all__ = ["ModelConfig", "DataConfig", "TrainConfig", "config_from_dict", "load_config"]


@dataclass(frozen=True)
class ModelConfig(ConfigBase):
    """Shape of a decoder-only, pre-LayerNorm transformer (GPT-2 layout).

    Parameters
    ----------
    vocab_size : int
        Number of token ids V (256 for the byte tokenizer, the alphabet size for a process).
    context : int
        Context length T in tokens (learned positional embeddings of this length).
    d_model, n_layer, n_head : int
        Residual width d, number of blocks L, attention heads (``d_model % n_head == 0``).
    d_mlp : int or None
        Hidden width of the MLP; ``None`` means ``4 * d_model``.
    tie_embeddings : bool
        Share the token embedding with the output (unembedding) matrix, as GPT-2 does.
    """

    vocab_size: int = 256
    context: int = 128
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_mlp: int | None = None
    tie_embeddings: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context", "d_model", "n_layer", "n_head"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"model.{name} must be a positive integer, got {v!r}")
        if self.d_model % self.n_head:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})"
            )
        if self.d_mlp is not None and (not isinstance(self.d_mlp, int) or self.d_mlp < 1):
            raise ConfigError(
                f"model.d_mlp must be a positive integer or omitted, got {self.d_mlp!r}"
            )
        if not (self.layer_norm_eps > 0):
            raise ConfigError(f"model.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")

    @property
    def mlp_width(self) -> int:
        return 4 * self.d_model if self.d_mlp is None else self.d_mlp



@dataclass(frozen=True)
class DataConfig(ConfigBase):
    """Where the tokens come from and how they are split.

    ``corpus`` is a registered corpus name (``occam data list``), a text file or folder, a ``.npy``
    file of integer symbol ids, or ``hf:NAME[:SPLIT[:COLUMN]]`` for a local Hugging Face dataset.
    The last ``val_fraction`` of the tokens is held out; training windows never reach into it.
    ``max_epochs`` bounds how often the training tokens may be seen (1.0 = each once on average):
    a run that asks for more tokens than that is an error rather than a silent repetition.
    """

    corpus: str = "shakespeare"
    val_fraction: float = 0.1
    max_epochs: float = 1.0
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ConfigError("data.corpus must name a corpus, a file or a folder")
        if not (0.0 < self.val_fraction < 1.0):
            raise ConfigError(f"data.val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if not (self.max_epochs > 0):
            raise ConfigError(f"data.max_epochs must be > 0, got {self.max_epochs!r}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ConfigError(f"data.max_bytes must be positive, got {self.max_bytes!r}")



@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """Everything a training run depends on; its JSON form is stored beside the checkpoint.

    The learning rate follows a linear warm-up over ``warmup_steps`` and a cosine decay to
    ``min_lr_ratio * lr`` at ``steps``:
    ``lr(s) = lr * (s + 1) / warmup`` for ``s < warmup``, else
    ``lr * [r + (1 - r) (1 + cos(pi * (s - warmup) / (steps - warmup))) / 2]``.
    Validation runs every ``eval_every`` steps on ``eval_tokens`` held-out tokens; with
    ``patience > 0`` training stops after that many evaluations without improvement (the best
    model is always the one kept, as Hernandez et al. 2021 measure at the validation optimum).
    ``snapshot_steps`` lists steps at which the model is also saved to ``out/snapshots/step-N/``
    and kept (``last/`` is overwritten; a snapshot is not), so the checkpoints along one run can
    be measured separately (the LLC trajectory). ``threads = 0`` picks the measured default (see
    docs/train.md). ``device = "auto"`` trains on
    the first CUDA device when torch sees one and on the CPU otherwise; the device used is
    recorded in the result.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_tokens: int = 16384
    patience: int = 0
    checkpoint_every: int = 0
    snapshot_steps: tuple[int, ...] = ()
    threads: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("warmup_steps", "patience", "checkpoint_every", "threads", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
        snaps = tuple(self.snapshot_steps)
        if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= self.steps
               for v in snaps):
            raise ConfigError(f"snapshot_steps must be integers in [1, steps={self.steps}], "
                              f"got {list(snaps)!r}")
        object.__setattr__(self, "snapshot_steps", tuple(sorted(set(snaps))))
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not (0.0 <= self.min_lr_ratio <= 1.0):
            raise ConfigError(f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")
        for name in ("beta1", "beta2"):
            if not (0.0 <= getattr(self, name) < 1.0):
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("weight_decay and grad_clip must be >= 0 (grad_clip 0 = no clipping)")
        if self.eval_tokens < self.model.context:
            raise ConfigError(
                f"eval_tokens ({self.eval_tokens}) must be at least "
                f"model.context ({self.model.context})"
            )

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.model.context



def load_config(
    path: str | Path | None = None, overrides: Mapping[str, str] | None = None
) -> TrainConfig:
    """Read a TOML training config and apply ``--set`` overrides (dotted keys, TOML values).

    Raises
    ------
    ConfigError
        The file is missing or not TOML, a key is unknown (with the nearest allowed one), or a
        value has the wrong type or range.
    """
    data = load_dotted(path, overrides)
    source = f"{Path(path)}: " if path is not None else ("--set: " if overrides else "")
    return config_from_dict(TrainConfig, data, source=source)
