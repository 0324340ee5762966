"""The `occam process` command line and the result contract of every result type."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occamlab.cli import main
from occamlab.processes import (
    analyze,
    build_process,
    compare,
    estimate_entropy_rate,
    minimal_generator,
)

INFO_KEYS = {"statistical_complexity", "entropy_rate", "excess_entropy", "crypticity",
             "n_causal_states", "unifilar", "truncated"}
GEN_KEYS = {"generative_complexity", "statistical_complexity", "states", "matrices",
            "max_word_error", "word_length"}


def test_result_contracts(result_contract) -> None:
    result_contract(analyze(build_process("even")))
    result_contract(analyze(build_process("mess3"), max_states=2000))
    result_contract(minimal_generator(build_process("binary-markov"), 2, n_starts=1))
    result_contract(compare("binary-markov", "p", [0.4], params={"q": "p"}, n_starts=0))
    result_contract(estimate_entropy_rate(build_process("sns"), n_steps=500, length=4))
    from occamlab.processes import generator_map

    result_contract(generator_map("binary-markov", "p", [0.3], "q", [0.4], n_starts=0))


def test_info_json_keys(tmp_path, capsys) -> None:
    out = tmp_path / "gm.json"
    assert main(["process", "info", "golden-mean", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert INFO_KEYS <= set(d)
    assert d["statistical_complexity"] == pytest.approx(np.log2(3) - 2 / 3, abs=1e-9)
    capsys.readouterr()
    assert main(["process", "info", "mess3", "--max-states", "500", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_causal_states"] is None and d["truncated"] is True


def test_generator_json_keys(tmp_path) -> None:
    out = tmp_path / "g.json"
    assert main(["process", "generator", "binary-markov", "--param", "p=0.4", "--param", "q=0.4",
                 "--states", "2", "--starts", "2", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert GEN_KEYS <= set(d) and d["generative_complexity"] < d["statistical_complexity"]


def test_compare_and_plot(tmp_path) -> None:
    png = tmp_path / "cmp.png"
    assert main(["process", "compare", "binary-markov", "--sweep", "p=0.3:0.45:2",
                 "--param", "q=p", "--starts", "0", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compare_grid_json(tmp_path) -> None:
    out = tmp_path / "grid.json"
    assert main(["process", "compare", "binary-markov", "--sweep", "p=0.3:0.4:2",
                 "--sweep", "q=0.3:0.3:1", "--starts", "1", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert len(d["generator_entropy"]) == 2 and len(d["generator_entropy"][0]) == 1


def test_sample_npz(tmp_path) -> None:
    out = tmp_path / "s.npz"
    assert main(["process", "sample", "mess3", "-n", "50", "--batch", "4", "--beliefs",
                 "--seed", "3", "--out", str(out)]) == 0
    z = np.load(out)
    assert z["symbols"].shape == (4, 50) and z["beliefs"].shape == (4, 50, 3)


def test_list_and_file(tmp_path, capsys) -> None:
    assert main(["process", "list"]) == 0
    assert "binary-markov" in capsys.readouterr().out
    f = tmp_path / "p.toml"
    f.write_text('matrices = [[[0.0, 0.5], [0.0, 0.0]], [[0.5, 0.0], [1.0, 0.0]]]\n')
    assert main(["process", "info", "--file", str(f), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["n_causal_states"] == 2


@pytest.mark.parametrize("argv,needle", [
    (["process", "info", "mess3", "--param", "x=0.9"], "valid range"),
    (["process", "info", "nope"], "unknown process"),
    (["process", "compare", "binary-markov", "--sweep", "p=0.1:0.2"], "START:STOP:N"),
    (["process", "info", "iid", "--param", "p"], "KEY=VALUE"),
])
def test_bad_input_exit_2(argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_file_exit_2_and_nothing_written(tmp_path, capsys) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"matrices": [[[0.5, 0.2], [0.5, 0.5]]]}))
    out = tmp_path / "o.npz"
    assert main(["process", "sample", "--file", str(f), "-n", "5", "--out", str(out)]) == 2
    assert "row 0" in capsys.readouterr().err and not out.exists()


def test_info_block_entropies(capsys) -> None:
    assert main(["process", "info", "golden-mean", "--block-entropies", "3", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    H = d["block_entropies"]
    assert len(H) == 4 and H[0] == 0.0
    assert H[1] == pytest.approx(0.9182958340544896, abs=1e-12)  # h(1/3)
    assert H[3] - H[2] == pytest.approx(2 / 3, abs=1e-12)  # Markov order 1
