"""A readable decoder-only transformer (pre-LayerNorm, GPT-2 layout) and its exact size and cost.

Parameter counts follow Kaplan et al. 2020 (arXiv:2001.08361): the non-embedding count N leaves out
the token and position embeddings (and an untied unembedding); for ``d_mlp = 4 d`` and biases it is
``N = L (12 d^2 + 13 d) + 2 d``. Training compute is about ``6 N`` FLOPs per token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from occamlab.errors import check_seed

from ._config import ModelConfig
from ._ensemble import causal_attention, ensemble_linear
from ._kernels import Linear, linear, linear_cross_entropy

__all__ = ["Transformer", "n_params", "n_params_non_embedding", "flops_per_token"]


class Attention(nn.Module):
    """Causal multi-head self-attention (``causal_attention``: SDPA above 64 tokens)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        shape = (B, T, self.n_head, C // self.n_head)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))  # (B, H, T, C/H)
        y = causal_attention(q, k, v)  # (B, H, T, C/H)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = Linear(cfg.d_model, cfg.mlp_width)
        self.proj = Linear(cfg.mlp_width, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tanh-approximate GELU, as GPT-2 ("gelu_new"), so the export is exact
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Decoder-only transformer: ``forward(idx) -> logits`` with idx (B, T) int64, logits (B, T, V).

    Weights are initialised from ``seed`` through a private generator (no global seeding):
    linear and embedding weights ~ N(0, 0.02^2), the two residual output projections of each
    block ~ N(0, (0.02 / sqrt(2 L))^2) as in GPT-2, biases 0, LayerNorm gains 1.

    Parameters
    ----------
    config : ModelConfig
        The architecture.
    seed : int, default 0
        Seed of the initialisation (a non-negative integer; the same seed, the same weights).
    init : bool, default True
        ``False`` skips the initialisation, for a model whose weights are loaded next
        (``load_state_dict``, as :func:`load_checkpoint` does): its parameters then hold
        arbitrary values. The global torch generator is untouched either way.

    Raises
    ------
    ConfigError
        ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> from occamlab.train import ModelConfig, Transformer
    >>> cfg = ModelConfig(vocab_size=8, context=16, d_model=8, n_layer=1, n_head=2)
    >>> m = Transformer(cfg, seed=0)
    >>> tuple(m(torch.zeros(2, 16, dtype=torch.long)).shape)
    (2, 16, 8)
    """

    def __init__(self, config: ModelConfig, *, seed: int = 0, init: bool = True) -> None:
        super().__init__()
        seed = check_seed(seed)
        self.config = config
        # torch's default initialisers draw from the global generator: build the layers with it
        # forked (restored afterwards), then initialise from our own generator below.
        with torch.random.fork_rng(devices=[]):
            self.wte = nn.Embedding(config.vocab_size, config.d_model)
            self.wpe = nn.Embedding(config.context, config.d_model)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
            self.head: Linear | None = None
            if not config.tie_embeddings:
                self.head = Linear(config.d_model, config.vocab_size, bias=False)
        if init:
            self.reset_parameters(seed=seed)

    @torch.no_grad()
    def reset_parameters(self, *, seed: int = 0) -> None:
        """Re-initialise every parameter deterministically from ``seed`` (a non-negative int)."""
        g = torch.Generator().manual_seed(check_seed(seed))
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln" in name or name.startswith("ln_f"):
                p.fill_(1.0)
            elif name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                p.normal_(0.0, resid_std, generator=g)
            else:
                p.normal_(0.0, 0.02, generator=g)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        weight = self.wte.weight if self.head is None else self.head.weight
        return linear(self.hidden(idx), weight)  # (B, T, V)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The final (LayerNorm-ed) hidden states ``(B, T, d)``, before the unembedding."""
        x = self._embed(idx)  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.context:
            raise ValueError(
                f"sequence length {T} exceeds the model's context {self.config.context}"
            )
        # positions 0..T-1 are the first T rows: a slice, not an embedding lookup
        return self.wte(idx) + self.wpe.weight[:T]  # (B, T, d)

    def residuals(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream: ``n_layer + 1`` tensors ``(B, T, d)``.

        Entry 0 is the embedding (token + position), entry ``l`` the stream after block ``l``
        (before the final LayerNorm, which :meth:`hidden` applies to the last entry). The same
        operations as :meth:`forward`, so ``ln_f(residuals(idx)[-1])`` is ``hidden(idx)``
        exactly. What linear probes read (Shai et al. 2024 probe the stream for belief states).

        Examples
        --------
        >>> from occamlab.train import ModelConfig, Transformer
        >>> m = Transformer(ModelConfig(vocab_size=3, context=8, d_model=8, n_layer=2, n_head=2))
        >>> [tuple(r.shape) for r in m.residuals(torch.zeros(4, 8, dtype=torch.long))]
        [(4, 8, 8), (4, 8, 8), (4, 8, 8)]
        """
        x = self._embed(idx)
        out = [x]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def ensemble_forward(
        self, params: Mapping[str, torch.Tensor], idx: torch.Tensor
    ) -> torch.Tensor:
        """Logits of C models of this architecture at once, each at its own weights.

        ``params`` maps every parameter name of this model (``dict(self.named_parameters())``)
        to a tensor with a leading ensemble axis, ``(C, *shape)``; ``idx`` is ``(C, B, T)``
        (member ``c`` reads ``idx[c]``). Returns ``(C, B, T, V)``, equal to
        ``stack([functional_call(self, params[c], idx[c])])`` up to float rounding, in one pass
        per layer instead of C (occamlab.slt runs its SGLD chains through it). Differentiable
        with respect to ``params``.
        """
        cfg = self.config
        missing = [k for k, _ in self.named_parameters() if k not in params]
        if missing:
            raise KeyError(f"ensemble_forward: no value for parameters {missing}")
        if idx.dim() != 3:
            raise ValueError(f"ensemble_forward: idx must be (C, B, T), got {tuple(idx.shape)}")
        C, B, T = idx.shape
        if T > cfg.context:
            raise ValueError(f"sequence length {T} exceeds the model's context {cfg.context}")
        d, V, H = cfg.d_model, cfg.vocab_size, cfg.n_head
        eps = cfg.layer_norm_eps
        if idx.numel():  # the members' tables are stacked: an id >= V would read the next one's
            lo, hi = (int(v) for v in torch.aminmax(idx))
            if lo < 0 or hi >= V:
                raise IndexError(f"token ids must be in [0, {V}), got values in [{lo}, {hi}]")

        def norm(x: torch.Tensor, name: str) -> torch.Tensor:
            xh = F.layer_norm(x, (d,), None, None, eps)
            return torch.addcmul(params[name + ".bias"].unsqueeze(1), xh,
                                 params[name + ".weight"].unsqueeze(1))

        def lin(x: torch.Tensor, name: str) -> torch.Tensor:
            return ensemble_linear(x, params[name + ".weight"], params.get(name + ".bias"))

        wte = params["wte.weight"]  # (C, V, d)
        rows = idx + (torch.arange(C, device=idx.device) * V).view(C, 1, 1)
        x = F.embedding(rows.reshape(C, B * T), wte.reshape(C * V, d))
        x = (x.view(C, B, T, d) + params["wpe.weight"][:, None, :T]).view(C, B * T, d)
        for i in range(cfg.n_layer):
            p = f"blocks.{i}."
            qkv = lin(norm(x, p + "ln1"), p + "attn.qkv")  # (C, B T, 3 d)
            # (3, C, B, H, T, hd) in one copy; q, k, v are contiguous slices of it
            qkv = qkv.view(C, B, T, 3, H, d // H).permute(3, 0, 1, 4, 2, 5).contiguous()
            y = causal_attention(qkv[0], qkv[1], qkv[2])
            x = x + lin(y.transpose(2, 3).reshape(C, B * T, d), p + "attn.proj")
            h = F.gelu(lin(norm(x, p + "ln2"), p + "mlp.fc"), approximate="tanh")
            x = x + lin(h, p + "mlp.proj")
        head = wte if self.head is None else params["head.weight"]
        return ensemble_linear(norm(x, "ln_f"), head).view(C, B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy in nats."""
        # the unembedding and the cross-entropy fused (the logits are never stored whole)
        weight = self.wte.weight if self.head is None else self.head.weight
        return linear_cross_entropy(self.hidden(idx), weight, targets)


def n_params(config: ModelConfig) -> int:
    """Total trainable parameters (tied embeddings counted once)."""
    d, V, T = config.d_model, config.vocab_size, config.context
    head = 0 if config.tie_embeddings else V * d
    return V * d + T * d + n_params_non_embedding(config) + head


def n_params_non_embedding(config: ModelConfig) -> int:
    """Non-embedding parameters N (Kaplan et al. 2020): blocks and the final LayerNorm.

    Per block: LayerNorms ``4 d``; attention ``4 d^2 + 4 d``; MLP ``2 d m + m + d`` (m = d_mlp).
    Token/position embeddings and the unembedding are excluded.
    """
    d, m, L = config.d_model, config.mlp_width, config.n_layer
    per_block = 4 * d + (4 * d * d + 4 * d) + (2 * d * m + m + d)
    return L * per_block + 2 * d


def flops_per_token(config: ModelConfig, *, training: bool = True) -> int:
    """Matrix-multiply FLOPs per token of a dense implementation at full context.

    Forward: ``2 L (4 d^2 + 2 d m)`` (weight matmuls) ``+ 4 L T d`` (attention scores and
    weighted values, no causal discount, as a dense kernel computes them) ``+ 2 d V``
    (unembedding). Training (forward + backward) is 3x the forward. Element-wise work (biases,
    LayerNorm, GELU, softmax) is not counted; Kaplan's approximation is ``6 N`` per token.
    """
    d, m, L, T, V = (
        config.d_model,
        config.mlp_width,
        config.n_layer,
        config.context,
        config.vocab_size,
    )
    forward = 2 * L * (4 * d * d + 2 * d * m) + 4 * L * T * d + 2 * d * V
    return 3 * forward if training else forward
