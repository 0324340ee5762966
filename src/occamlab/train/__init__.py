"""Small decoder-only transformers on a CPU: data windows, training, fine-tuning, checkpoints.

Public API (see docs/train.md)::

    from occamlab.train import (ModelConfig, TrainConfig, Transformer, train, finetune,
                                load_checkpoint, save_checkpoint, iter_windows, ByteTokenizer,
                                lm_windows, token_loss, set_matmul_backend, generate)

Importing it has no side effects (no environment variable is read, nothing is computed).
"""

from ._checkpoint import load_checkpoint, read_config, save_checkpoint
from ._client import (
    LOSSES,
    AdamParams,
    Datum,
    ForwardOutput,
    TrainingClient,
    check_batch,
    done_future,
    weighted_loss,
)
from ._config import DataConfig, ModelConfig, TrainConfig, config_from_dict, load_config
from ._corpora import CorpusInfo, CorpusList, corpus_files, list_corpora, load_corpus
from ._data import (
    ByteTokenizer,
    TokenSplit,
    as_tokens,
    iter_windows,
    sample_batch,
    split_tokens,
)
from ._export import export_transformers, gpt2_config, to_transformers
from ._finetune import LORA_TARGETS, MODES, finetune, lora_targets
from ._generate import generate
from ._kernels import matmul_backend, set_matmul_backend
from ._lm import lm_windows, token_loss
from ._local_client import LocalTrainingClient
from ._loop import snapshot_path, train
from ._model import Transformer, flops_per_token, n_params, n_params_non_embedding
from ._prepare import default_threads, evaluate, prepare_split, resolve_device
from ._result import StepEvent, TrainingDiverged, TrainResult, lr_at

__all__ = [
    "AdamParams",
    "Datum",
    "ForwardOutput",
    "LocalTrainingClient",
    "TrainingClient",
    "LOSSES",
    "check_batch",
    "done_future",
    "weighted_loss",
    "ByteTokenizer",
    "CorpusInfo",
    "CorpusList",
    "DataConfig",
    "ModelConfig",
    "StepEvent",
    "TokenSplit",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "Transformer",
    "as_tokens",
    "config_from_dict",
    "corpus_files",
    "default_threads",
    "resolve_device",
    "evaluate",
    "export_transformers",
    "finetune",
    "generate",
    "gpt2_config",
    "flops_per_token",
    "iter_windows",
    "LORA_TARGETS",
    "lora_targets",
    "MODES",
    "list_corpora",
    "lm_windows",
    "load_checkpoint",
    "load_config",
    "load_corpus",
    "lr_at",
    "matmul_backend",
    "n_params",
    "n_params_non_embedding",
    "prepare_split",
    "read_config",
    "sample_batch",
    "save_checkpoint",
    "set_matmul_backend",
    "snapshot_path",
    "split_tokens",
    "to_transformers",
    "token_loss",
    "train",
]
