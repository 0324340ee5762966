"""Export to Hugging Face ``transformers``: an equivalent ``GPT2LMHeadModel``.

The occamlab :class:`Transformer` has GPT-2's layout (learned positions, pre-LayerNorm blocks,
fused QKV, tanh-GELU MLP, tied unembedding), so the export is exact: the GPT-2 model's logits
equal ours to float rounding. GPT-2 stores its linear layers as ``Conv1D`` with the weight
transposed (d_in x d_out).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from occamlab._io import atomic_dir
from occamlab.errors import ConfigError

from ._checkpoint import load_checkpoint
from ._config import ModelConfig
from ._model import Transformer

__all__ = ["gpt2_config", "to_transformers", "export_transformers"]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            "export needs the optional package transformers (pip install 'occamlab[lora]')"
        ) from None
    return transformers


def gpt2_config(config: ModelConfig) -> Any:
    """The ``transformers.GPT2Config`` of the same shape (no dropout)."""
    tf = _transformers()
    return tf.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.context,
        n_embd=config.d_model,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=config.mlp_width,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=config.layer_norm_eps,
        tie_word_embeddings=config.tie_embeddings,
        bos_token_id=0,
        eos_token_id=0,
    )


@torch.no_grad()
def to_transformers(model: Transformer) -> Any:
    """A ``transformers.GPT2LMHeadModel`` carrying ``model``'s weights (eval mode)."""
    tf = _transformers()
    cfg = model.config
    with torch.random.fork_rng(devices=[]):  # its initial weights, all replaced below, would
        hf = tf.GPT2LMHeadModel(gpt2_config(cfg))  # draw from the caller's global generator
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {
        "transformer.wte.weight": sd["wte.weight"],
        "transformer.wpe.weight": sd["wpe.weight"],
        "transformer.ln_f.weight": sd["ln_f.weight"],
        "transformer.ln_f.bias": sd["ln_f.bias"],
    }
    for i in range(cfg.n_layer):
        src, dst = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[dst + b + ".weight"] = sd[src + a + ".weight"]
            out[dst + b + ".bias"] = sd[src + a + ".bias"]
        for a, b in (
            ("attn.qkv", "attn.c_attn"),
            ("attn.proj", "attn.c_proj"),
            ("mlp.fc", "mlp.c_fc"),
            ("mlp.proj", "mlp.c_proj"),
        ):
            out[dst + b + ".weight"] = sd[src + a + ".weight"].t().contiguous()  # Conv1D layout
            out[dst + b + ".bias"] = sd[src + a + ".bias"]
    out["lm_head.weight"] = sd["wte.weight"] if cfg.tie_embeddings else sd["head.weight"]
    missing, unexpected = hf.load_state_dict(out, strict=False)
    real_missing = [
        k for k in missing if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")
    ]
    if real_missing or unexpected:  # pragma: no cover - guards a transformers layout change
        raise RuntimeError(f"GPT-2 layout changed: missing {real_missing}, unexpected {unexpected}")
    hf.eval()
    return hf


def export_transformers(
    checkpoint: str | os.PathLike[str] | Transformer, out: str | os.PathLike[str]
) -> Path:
    """Write a checkpoint as a Hugging Face model directory (``save_pretrained``, safetensors)."""
    model = checkpoint if isinstance(checkpoint, Transformer) else load_checkpoint(checkpoint)[0]
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"export destination {str(out)!r} exists and is not empty")
    hf = to_transformers(model)
    with atomic_dir(out) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
    return out
