"""Fine-tuning (full, frozen embeddings, LoRA through peft) and the Hugging Face export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occamlab.errors import ConfigError, DataError
from occamlab.train import (
    ModelConfig,
    Transformer,
    evaluate,
    export_transformers,
    finetune,
    load_checkpoint,
    load_corpus,
    lora_targets,
    save_checkpoint,
    to_transformers,
    train,
)

from .conftest import tiny_config

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    torch.set_num_threads(1)
    train(tiny_config(steps=300), out=out)
    return out


def _code_config():
    return tiny_config(**{"data.corpus": "python-stdlib", "steps": 120, "eval_every": 40})


def test_full_frozen_and_lora_rank1_fine_tunes(pretrained, tmp_path) -> None:
    before, _ = load_checkpoint(pretrained)
    before_state = {k: v.clone() for k, v in before.state_dict().items()}
    code = load_corpus("python-stdlib", max_bytes=400_000)
    val = code[-40_000:]
    start = evaluate(before, val, context=32, max_tokens=2048)
    results = {}
    for mode, rank in (("full", None), ("frozen_embedding", None), ("lora", 1)):
        model, res = finetune(pretrained, _code_config(), mode=mode, lora_rank=rank or 8,
                              out=tmp_path / mode)
        results[mode] = res
        assert res.best_val_loss < start - 0.3  # each mode adapts to the new corpus
        loaded, cfg = load_checkpoint(tmp_path / mode)
        assert cfg == before.config
        assert torch.allclose(loaded(torch.zeros(1, 32, dtype=torch.long)),
                              model(torch.zeros(1, 32, dtype=torch.long)), atol=1e-6)
        if mode == "frozen_embedding":
            assert torch.equal(loaded.wte.weight, before_state["wte.weight"])
            assert torch.equal(loaded.wpe.weight, before_state["wpe.weight"])
            assert not torch.equal(loaded.blocks[0].mlp.fc.weight,
                                   before_state["blocks.0.mlp.fc.weight"])
        if mode == "lora":
            # merged rank-1 update: every adapted matrix moved by a rank-1 matrix, the rest not
            delta = loaded.blocks[0].mlp.fc.weight.detach() - before_state["blocks.0.mlp.fc.weight"]
            s = torch.linalg.svdvals(delta)
            assert s[0] > 0 and float(s[1] / s[0]) < 1e-4
            assert torch.equal(loaded.wte.weight, before_state["wte.weight"])
            assert torch.equal(loaded.blocks[0].ln1.weight, before_state["blocks.0.ln1.weight"])
    # the input checkpoint is never modified
    again, _ = load_checkpoint(pretrained)
    assert all(torch.equal(v, before_state[k]) for k, v in again.state_dict().items())
    # trainable-parameter counts: all; all but embeddings; rank-1 adapters only
    d, L, m, T, V = 16, 2, 64, 32, 256
    assert results["full"].n_params_trainable == results["full"].n_params
    assert results["frozen_embedding"].n_params_trainable == results["full"].n_params - (V + T) * d
    assert results["lora"].n_params_trainable == L * ((d + 3 * d) + 2 * d + (d + m) + (m + d))
    # full fine-tuning moves more than a rank-1 adapter in the same number of steps
    assert results["full"].best_val_loss < results["lora"].best_val_loss


def test_lora_is_deterministic(pretrained) -> None:
    cfg = _code_config().replace(steps=40, eval_every=20)
    rng = torch.random.get_rng_state()
    _, a = finetune(pretrained, cfg, mode="lora", lora_rank=2)
    assert torch.equal(torch.random.get_rng_state(), rng)  # peft drew from a fork, not ours
    _, b = finetune(pretrained, cfg, mode="lora", lora_rank=2)
    assert a.evals == b.evals
    _, c = finetune(pretrained, cfg.replace(seed=1), mode="lora", lora_rank=2)
    assert c.evals != a.evals


def test_finetune_bad_input(pretrained, tmp_path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        finetune(pretrained, _code_config(), mode="half")
    with pytest.raises(ConfigError, match="rank"):
        finetune(pretrained, _code_config(), mode="lora", lora_rank=0)
    with pytest.raises(ConfigError, match="rank"):
        finetune(pretrained, _code_config(), mode="lora", lora_rank=True)
    with pytest.raises(ConfigError, match="allowed"):
        lora_targets("attn.q")
    assert lora_targets("mlp") == ("mlp.fc", "mlp.proj")
    with pytest.raises(DataError, match="not a checkpoint"):
        finetune(tmp_path, _code_config())
    # a checkpoint whose tensors do not match its config (another architecture)
    other = Transformer(ModelConfig(vocab_size=256, context=32, d_model=32, n_layer=1, n_head=2))
    bad = save_checkpoint(tmp_path / "bad", other)
    cfg_text = (bad / "config.json").read_text().replace('"d_model": 32', '"d_model": 16')
    (bad / "config.json").write_text(cfg_text)
    with pytest.raises(DataError, match="do not match the architecture"):
        load_checkpoint(bad)
    with pytest.raises(DataError, match="out of range"):
        finetune(pretrained, _code_config(), tokens=np.arange(10_000) % 300)


def test_export_to_transformers_gives_the_same_logits(pretrained, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    model, cfg = load_checkpoint(pretrained)
    x = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(x)
        rng = torch.random.get_rng_state()
        assert torch.allclose(to_transformers(model)(x).logits, ours, atol=1e-5)
        assert torch.equal(torch.random.get_rng_state(), rng)  # GPT-2's init drew from a fork
        path = export_transformers(pretrained, tmp_path / "hf")
        hf = transformers.AutoModelForCausalLM.from_pretrained(path)
        assert torch.allclose(hf(x).logits, ours, atol=1e-5)
    untied = Transformer(ModelConfig(vocab_size=7, context=8, d_model=8, n_layer=1, n_head=2,
                                     tie_embeddings=False, d_mlp=12), seed=3).eval()
    y = torch.randint(0, 7, (3, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(to_transformers(untied)(y).logits, untied(y), atol=1e-5)
    with pytest.raises(ConfigError, match="not empty"):
        export_transformers(pretrained, tmp_path / "hf")


class _Kill(Exception):
    pass


def test_lora_resume_after_kill_gives_the_same_final_loss(pretrained, tmp_path) -> None:
    cfg = _code_config().replace(steps=60, eval_every=20, checkpoint_every=20, patience=0)
    kw = {"mode": "lora", "lora_rank": 2}
    model_a, full = finetune(pretrained, cfg, out=tmp_path / "a", **kw)

    def kill_at_45(event) -> None:
        if event.step == 45:
            raise _Kill

    with pytest.raises(_Kill):
        finetune(pretrained, cfg, out=tmp_path / "b", callback=kill_at_45, **kw)
    last = tmp_path / "b" / "last"
    assert (last / "trainable.safetensors").is_file()
    model_b, resumed = finetune(pretrained, cfg, out=tmp_path / "b", resume=True, **kw)
    assert resumed.final_train_loss == full.final_train_loss
    assert resumed.best_val_loss == full.best_val_loss and resumed.evals == full.evals
    assert (tmp_path / "b" / "loss_curve.jsonl").read_text() == (
        tmp_path / "a" / "loss_curve.jsonl"
    ).read_text()
    # the saved models are the merged ones, equal to the uninterrupted run's
    assert all(
        torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters(), strict=True)
    )
    loaded, _ = load_checkpoint(tmp_path / "b" / "last")
    loaded_a, _ = load_checkpoint(tmp_path / "a" / "last")
    pairs = zip(loaded.parameters(), loaded_a.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)
    # adapters of another rank cannot continue this run; nor can a checkpoint without adapters
    with pytest.raises(ConfigError, match="differs"):
        finetune(pretrained, cfg, out=tmp_path / "b", resume=True, mode="lora", lora_rank=3)
    (last / "trainable.safetensors").unlink()
    with pytest.raises(DataError, match="trainable.safetensors"):
        finetune(pretrained, cfg, out=tmp_path / "b", resume=True, **kw)
