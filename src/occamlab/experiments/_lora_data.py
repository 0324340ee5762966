"""The data of a LoRA fine-tuning run: a corpus split once, tokenized, cut into windows.

The corpus (``occam data list``; its first ``max_bytes`` bytes) is split by bytes: the last
``val_fraction`` is held out, the rest trains. Both parts are tokenized with the run's tokenizer;
a run with ``D_F`` fine-tuning tokens trains on the first ``D_F`` tokens of the training part
(so a larger ``D_F`` contains every smaller one) as disjoint windows of ``context`` tokens, in an
order drawn from the seed, and is measured on the first ``eval_tokens`` tokens of the held-out
part: the same held-out windows for every run that shares corpus, tokenizer and context.

Tokenizers: ``bytes`` (UTF-8 bytes, ids 0-255: the local byte-level models, and the stand-in
service of the tests), ``hf:NAME_OR_PATH`` (a Hugging Face tokenizer from a local folder or the
local cache), or ``auto``: ``bytes`` on the local backend, the base model's own tokenizer (from
the service, at run time) on Tinker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from occamlab.errors import ConfigError, DataError, check_seed
from occamlab.train import Datum

# parameters (all, embeddings included) of dense models the Tinker service has offered, from
# their model cards; the fit's N. A model not listed needs `n_params` in the config.
KNOWN_MODELS: dict[str, float] = {
    "meta-llama/Llama-3.2-1B": 1.24e9,
    "meta-llama/Llama-3.2-3B": 3.21e9,
    "meta-llama/Llama-3.1-8B": 8.03e9,
    "meta-llama/Llama-3.1-8B-Instruct": 8.03e9,
    "meta-llama/Llama-3.1-70B": 70.6e9,
    "meta-llama/Llama-3.3-70B-Instruct": 70.6e9,
    "Qwen/Qwen3-4B-Instruct-2507": 4.02e9,
    "Qwen/Qwen3-8B": 8.19e9,
    "Qwen/Qwen3-8B-Base": 8.19e9,
    "Qwen/Qwen3-32B": 32.8e9,
}


def is_remote(config: Any) -> bool:
    """Whether a ``lora-finetune`` run trains on a paid service (the sweep then asks for
    ``--yes``)."""
    return bool(config.training_backend == "tinker")

__all__ = ["RunData", "Tokenizer", "prepare", "bytes_tokenizer", "hf_tokenizer", "windows",
           "BYTES_PER_TOKEN_GUESS", "corpus_bytes"]

# subword tokenizers of current open-weight models average 3.5-4.5 bytes of English or code per
# token; the plan uses 4 when the run's tokenizer is not at hand (and says so)
BYTES_PER_TOKEN_GUESS = 4.0


@dataclass(frozen=True)
class Tokenizer:
    """A name and ``encode(text bytes) -> int64 ids``."""

    name: str
    encode: Callable[[bytes], np.ndarray]


def bytes_tokenizer() -> Tokenizer:
    return Tokenizer("bytes", lambda b: np.frombuffer(b, dtype=np.uint8).astype(np.int64))


def hf_tokenizer(name: str, *, obj: Any = None, local_only: bool = True) -> Tokenizer:
    """A Hugging Face tokenizer (``obj`` if given, else ``AutoTokenizer.from_pretrained(name)``,
    from local files only unless ``local_only`` is false)."""
    if obj is None:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ConfigError("tokenizer 'hf:...' needs transformers (pip install "
                              "'occamlab[lora]')") from None
        try:
            obj = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise DataError(f"tokenizer {name!r} cannot be loaded"
                            f"{' from local files' if local_only else ''}: {exc}") from None

    def encode(b: bytes) -> np.ndarray:
        ids = obj.encode(b.decode("utf-8", errors="ignore"), add_special_tokens=False)
        return np.asarray(ids, dtype=np.int64)

    return Tokenizer(f"hf:{name}", encode)


def corpus_bytes(spec: str, max_bytes: int | None) -> bytes:
    """The first ``max_bytes`` bytes of a text corpus (``occam data list``, a file or folder)."""
    from occamlab.train import load_corpus

    if spec.endswith(".npy"):
        raise ConfigError(f"data {spec!r}: a token array has no text to tokenize; give a text "
                          "corpus (occam data list) for LoRA fine-tuning")
    arr = load_corpus(spec, max_bytes=max_bytes)
    return np.asarray(arr, dtype=np.uint8).tobytes()


def _encode_prefix(tok: Tokenizer, text: bytes, n_tokens: int) -> np.ndarray:
    """The first ``n_tokens`` tokens of ``text`` (fewer if it has fewer), tokenizing only a
    prefix: it grows until it gives 16 tokens more than needed, so the cut is never at the end."""
    size = min(len(text), max(1024, int(n_tokens * 6)))
    while True:
        ids = tok.encode(text[:size])
        if ids.size >= n_tokens + 16 or size >= len(text):
            return ids[:n_tokens]
        size = min(len(text), size * 2)


@dataclass(frozen=True, eq=False)
class RunData:
    """Training windows (``train``: (n, T+1) ids, in the seed's order) and held-out windows
    (``heldout``: (m, T+1)); ``tokenizer`` names how the text became ids."""

    train: np.ndarray
    heldout: np.ndarray
    tokenizer: str

    def batch(self, step: int, batch_size: int) -> list[Datum]:
        """The windows of optimisation step ``step``, weighted ``1/(B T)`` (mean loss)."""
        rows = self.train[step * batch_size:(step + 1) * batch_size]
        w = np.full(rows.shape[1] - 1, 1.0 / (rows.shape[0] * (rows.shape[1] - 1)), np.float32)
        return [Datum(r[:-1], r[1:], w) for r in rows]

    def heldout_batches(self, size: int) -> list[list[Datum]]:
        """The held-out windows in batches of ``size`` (unit weights)."""
        rows = [Datum(r[:-1], r[1:]) for r in self.heldout]
        return [rows[i:i + size] for i in range(0, len(rows), size)]


def windows(ids: np.ndarray, context: int, n: int) -> np.ndarray:
    """``n`` disjoint windows of ``context + 1`` ids (inputs and next-token targets share all
    but one id): window ``i`` is ``ids[i T : (i + 1) T + 1]``."""
    if ids.size < n * context + 1:
        raise DataError(f"{ids.size} tokens make fewer than {n} windows of {context} tokens")
    idx = np.arange(n)[:, None] * context + np.arange(context + 1)[None, :]
    return ids[idx]


def prepare(text: bytes, tok: Tokenizer, *, val_fraction: float, context: int,
            n_train_windows: int, n_heldout_windows: int, seed: int = 0) -> RunData:
    """Split ``text``, tokenize the parts and cut the windows (see the module docstring).

    Raises
    ------
    DataError
        The corpus is too small for the windows asked for (the message says how many tokens
        each part has and needs).
    """
    seed = check_seed(seed)
    cut = len(text) - int(len(text) * val_fraction)
    need_train, need_val = n_train_windows * context + 1, n_heldout_windows * context + 1
    train_ids = _encode_prefix(tok, text[:cut], need_train)
    val_ids = _encode_prefix(tok, text[cut:], need_val)
    for part, ids, need in (("training", train_ids, need_train), ("held-out", val_ids, need_val)):
        if ids.size < need:
            raise DataError(f"the corpus's {part} part has {ids.size} tokens ({tok.name}); this "
                            f"run needs {need}: lower finetune_tokens/eval_tokens or raise "
                            "max_bytes")
    train = windows(train_ids, context, n_train_windows)
    order = np.random.default_rng([seed, 17]).permutation(n_train_windows)
    return RunData(train[order], windows(val_ids, context, n_heldout_windows), tok.name)
