"""Language-model windows of a corpus and the per-token loss (the data and loss_fn of slt)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from occamlab.errors import ConfigError, DataError
from occamlab.train import ByteTokenizer, iter_windows, lm_windows, load_corpus, token_loss


def _old_cli_windows(tokens: np.ndarray, context: int, max_tokens: int):
    """What `occam llc`/`occam compress` built before lm_windows: 256-window batches, joined."""
    batches = list(iter_windows(tokens[: max_tokens + 1], context=context, batch_size=256,
                                max_tokens=max_tokens))
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def test_windows_are_disjoint_shifted_by_one_and_as_before() -> None:
    tokens = np.random.default_rng(0).integers(0, 50, 40_000)
    x, y = lm_windows(tokens, context=32, vocab_size=50, max_tokens=20_000)
    assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (625, 32)
    assert torch.equal(x.reshape(-1), torch.from_numpy(tokens[:20_000]))
    assert torch.equal(y.reshape(-1), torch.from_numpy(tokens[1:20_001]))
    want = _old_cli_windows(tokens, 32, 20_000)  # more than one of the old 256-window batches
    assert torch.equal(x, want[0]) and torch.equal(y, want[1])
    # too few tokens for max_tokens: as many whole windows as the data holds
    x, y = lm_windows(tokens[:100], context=32, vocab_size=50, max_tokens=20_000)
    assert x.shape == (3, 32) and int(y[-1, -1]) == tokens[96]


def test_corpus_specs_read_only_what_is_used(tmp_path) -> None:
    tokens = np.arange(1000) % 7
    np.save(tmp_path / "t.npy", tokens)
    a = lm_windows(str(tmp_path / "t.npy"), context=10, vocab_size=7, max_tokens=95)
    b = lm_windows(tokens, context=10, vocab_size=7, max_tokens=95)
    assert a[0].shape == (9, 10) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    x, y = lm_windows("shakespeare", context=16, vocab_size=256, max_tokens=1000)
    text = load_corpus("shakespeare", max_bytes=1001)
    assert x.shape == (62, 16) and torch.equal(x[0], torch.from_numpy(text[:16]))
    assert ByteTokenizer().decode(y[0].numpy()) == ByteTokenizer().decode(text[1:17])
    # an id beyond the data actually used is never read, so never refused
    x, _ = lm_windows(np.r_[tokens[:11], 99], context=5, vocab_size=7, max_tokens=10)
    assert x.shape == (2, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"context": 0}, "context must be a positive integer"),
        ({"context": 2.5}, "context must be a positive integer"),
        ({"vocab_size": True}, "vocab_size must be a positive integer"),
        ({"max_tokens": 8}, "max_tokens must be > the model context 8"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs, match) -> None:  # type: ignore[no-untyped-def]
    args = {"context": 8, "vocab_size": 10, "max_tokens": 100} | kwargs
    with pytest.raises(ConfigError, match=match):
        lm_windows(np.arange(100) % 10, **args)


def test_bad_data_are_data_errors(tmp_path) -> None:
    kw = {"context": 8, "vocab_size": 10, "max_tokens": 100}
    with pytest.raises(DataError, match="out of range for vocab_size 10"):
        lm_windows(np.arange(50), **kw)
    with pytest.raises(DataError, match="no complete window of 8 tokens"):
        lm_windows(np.arange(8), **kw)
    with pytest.raises(DataError, match="1-D"):
        lm_windows(np.zeros((3, 20), dtype=int), **kw)
    with pytest.raises(DataError, match="does not exist"):
        lm_windows(str(tmp_path / "missing.npy"), **kw)


def test_token_loss_is_the_mean_cross_entropy_in_nats() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 16, 30, generator=g, requires_grad=True)
    targets = torch.randint(0, 30, (4, 16), generator=g)
    loss = token_loss(logits, targets)
    assert loss.shape == ()
    assert torch.equal(loss, F.cross_entropy(logits.reshape(-1, 30), targets.reshape(-1)))
    by_hand = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).mean()
    assert abs(loss.item() - by_hand.item()) < 1e-6
    assert abs(token_loss(torch.zeros(2, 5, 8), targets[:2, :5] % 8).item() - math.log(8)) < 1e-6
    loss.backward()
    assert logits.grad is not None
    # per example under vmap, as occamlab.slt evaluates it
    per = torch.func.vmap(lambda a, b: token_loss(a[None], b[None]))(logits.detach(), targets)
    assert torch.allclose(per.mean(), loss.detach(), rtol=1e-6)


def test_token_loss_names_bad_input() -> None:
    logits = torch.zeros(2, 5, 8)
    with pytest.raises(DataError, match=r"must match, got shapes \(2, 5, 8\) and \(2, 4\)"):
        token_loss(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(DataError, match="integer token ids, got torch.float32"):
        token_loss(logits, torch.zeros(2, 5))
    with pytest.raises(DataError, match=r"token ids in \[0, 8\)"):
        token_loss(logits, torch.full((2, 5), 8))
