"""Tokens, windows, splits and the corpora registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occamlab.cli import main
from occamlab.errors import ConfigError, DataError
from occamlab.train import (
    ByteTokenizer,
    as_tokens,
    iter_windows,
    list_corpora,
    load_corpus,
    sample_batch,
    split_tokens,
)


def test_byte_tokenizer_round_trips_unicode() -> None:
    tok = ByteTokenizer()
    text = "To be, or not to be — ça va? 例"
    ids = tok.encode(text)
    assert ids.dtype == np.uint8 and ids.size == len(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_windows_are_shifted_by_one_and_disjoint() -> None:
    data = np.arange(103)
    xs, ys = zip(*iter_windows(data, context=10, batch_size=4), strict=True)
    x, y = np.concatenate([t.numpy() for t in xs]), np.concatenate([t.numpy() for t in ys])
    assert x.shape == (10, 10)  # (103 - 1) // 10 windows
    assert np.array_equal(y, x + 1)
    assert np.array_equal(x.ravel(), np.arange(100))  # every position once, no overlap


def test_numpy_symbols_pass_through_and_input_is_not_mutated() -> None:
    seq = np.array([0, 1, 1, 0, 2, 2, 1, 0, 1], dtype=np.int8)
    before = seq.copy()
    x, y = next(iter_windows(seq, context=4, batch_size=8))
    assert x.tolist() == [[0, 1, 1, 0], [2, 2, 1, 0]]
    assert y.tolist() == [[1, 1, 0, 2], [2, 1, 0, 1]]
    assert np.array_equal(seq, before)
    with pytest.raises(DataError, match="out of range"):
        as_tokens(seq, vocab_size=2)
    with pytest.raises(DataError, match="integers"):
        as_tokens(np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="1-D"):
        as_tokens(np.zeros((2, 2), dtype=int))


def test_split_never_overlaps_and_batches_stay_in_train() -> None:
    tokens = np.arange(1000) % 7
    sp = split_tokens(np.arange(1000), val_fraction=0.2, context=16)
    assert sp.train.size == 800 and sp.val.size == 200
    assert sp.train[-1] < sp.val[0]  # positions: train is the head, validation the tail
    for step in range(20):
        x, y = sample_batch(sp.train, context=16, batch_size=8, seed=0, step=step)
        assert int(y.max()) <= 799
    a = sample_batch(tokens, context=16, batch_size=8, seed=3, step=7)
    b = sample_batch(tokens, context=16, batch_size=8, seed=3, step=7)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    # the offsets are numpy's default_rng([seed, step]) draws, and the seed defaults to 0
    want = np.random.default_rng([0, 7]).integers(0, 1000 - 16, size=8)
    x, y = sample_batch(tokens, context=16, batch_size=8, step=7)
    assert np.array_equal(x[:, 0].numpy(), tokens[want]) and np.array_equal(y[:, -1], tokens[want + 16])


@pytest.mark.parametrize("bad", [-1, 1.5, None, True, 2**63])
def test_sample_batch_seed_and_step_follow_the_seed_rule(bad) -> None:  # type: ignore[no-untyped-def]
    tokens = np.arange(100)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer|below 2"):
        sample_batch(tokens, context=8, batch_size=2, step=0, seed=bad)
    if bad != 2**63:
        with pytest.raises(ConfigError, match="step must be a non-negative integer"):
            sample_batch(tokens, context=8, batch_size=2, step=bad)
    with pytest.raises(DataError, match="too small"):
        split_tokens(np.arange(40), val_fraction=0.1, context=16)


def test_registry_lists_english_and_code_with_licences() -> None:
    corpora = {c.name: c for c in list_corpora().corpora}
    assert corpora["shakespeare"].available and corpora["shakespeare"].kind == "english"
    assert corpora["python-stdlib"].available and corpora["python-stdlib"].kind == "code"
    assert corpora["shakespeare"].n_files == 42 and corpora["shakespeare"].n_bytes > 4_000_000
    assert corpora["python-stdlib"].n_bytes > 5_000_000
    assert all(c.licence for c in corpora.values())
    text = ByteTokenizer().decode(load_corpus("shakespeare", max_bytes=200_000))
    assert "ALL'S WELL" in text.upper() and len(text) > 100_000
    code = ByteTokenizer().decode(load_corpus("python-stdlib", max_bytes=100_000))
    assert "def " in code and "import " in code


def test_corpus_list_contract(result_contract) -> None:
    result_contract(list_corpora())


def test_user_files_folders_and_npy(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("hello ")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("world")
    assert ByteTokenizer().decode(load_corpus(str(tmp_path))) == "hello \nworld\n"
    np.save(tmp_path / "seq.npy", np.array([0, 1, 2, 1], dtype=np.int16))
    assert load_corpus(str(tmp_path / "seq.npy")).tolist() == [0, 1, 2, 1]
    with pytest.raises(DataError, match="did you mean 'shakespeare'"):
        load_corpus("shakespear")
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(str(tmp_path / "missing.npy"))


def test_cli_data_list(capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "shakespeare" in out and "python-stdlib" in out and "licence" in out
    assert main(["data", "list", "--json", "-"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)["corpora"]]
    assert {"shakespeare", "python-stdlib"} <= set(names)


def test_hf_dataset_on_disk(tmp_path) -> None:
    import importlib.util

    if importlib.util.find_spec("datasets") is None:
        with pytest.raises(DataError, match="optional `datasets` package"):
            load_corpus("hf:wikitext")
        return
    import datasets

    datasets.Dataset.from_dict({"text": ["abc", "de"], "n": [1, 2]}).save_to_disk(tmp_path / "ds")
    assert ByteTokenizer().decode(load_corpus(f"hf:{tmp_path / 'ds'}")) == "abc\nde\n"
    with pytest.raises(DataError, match="no column 'body'"):
        load_corpus(f"hf:{tmp_path / 'ds'}:train:body")
