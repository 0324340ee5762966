"""Presentations: validation, stationary law, words, structure, reversal, files, library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occamlab.errors import ConfigError, DataError
from occamlab.processes import PROCESSES, Presentation, build_process, load_presentation


def test_validation_names_the_bad_row_and_sum() -> None:
    with pytest.raises(DataError, match=r"row 1 .* sums to 0\.9"):
        Presentation([[[0.5, 0.5], [0.4, 0.5]]])
    with pytest.raises(DataError, match="negative entry"):
        Presentation([[[1.2, -0.2], [0.5, 0.5]]])
    with pytest.raises(DataError, match="shape"):
        Presentation([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(DataError, match="NaN"):
        Presentation([[[np.nan, 1.0], [0.5, 0.5]]])
    with pytest.raises(DataError, match="symbols"):
        Presentation([[[1.0]]], symbols=("a", "b"))


def test_inputs_are_not_mutated_and_matrices_are_read_only() -> None:
    T = np.array([[[0.5, 0.0], [0.0, 0.0]], [[0.0, 0.5], [1.0, 0.0]]])
    before = T.copy()
    p = Presentation(T)
    assert np.array_equal(T, before)
    with pytest.raises(ValueError):
        p.matrices[0, 0, 0] = 1.0


def test_golden_mean_words_and_stationary() -> None:
    g = build_process("golden-mean")
    np.testing.assert_allclose(g.stationary_distribution(), [2 / 3, 1 / 3], atol=1e-15)
    assert g.word_probability("00") == 0.0
    assert g.word_probability("11") == pytest.approx(1 / 3, abs=1e-15)
    w3 = g.word_probabilities(3)
    assert w3.shape == (2, 2, 2) and w3.sum() == pytest.approx(1.0, abs=1e-14)
    # Stationarity: marginalizing the last symbol of length-3 words gives length-2 words.
    np.testing.assert_allclose(w3.sum(axis=2), g.word_probabilities(2), atol=1e-15)
    np.testing.assert_allclose(w3.sum(axis=0), g.word_probabilities(2), atol=1e-15)


def test_structure_checks() -> None:
    assert build_process("even").is_unifilar()
    assert not build_process("sns").is_unifilar()
    assert not build_process("lohr").is_unifilar()
    assert not build_process("mess3").is_unifilar()
    two_classes = Presentation([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    assert not two_classes.is_irreducible()
    with pytest.raises(DataError, match=r"not ergodic: .* 2 closed classes \(\{A\}; \{B\}\)"):
        two_classes.stationary_distribution()


def test_transient_states_are_dropped() -> None:
    from occamlab.processes import analyze

    # The golden mean with an extra transient state C that leaves for A or B.
    T = np.zeros((2, 3, 3))
    T[1, 0, 0], T[0, 0, 1], T[1, 1, 0] = 0.5, 0.5, 1.0
    T[0, 2, 0], T[1, 2, 1] = 0.3, 0.7
    p = Presentation(T)
    assert not p.is_irreducible()
    np.testing.assert_allclose(p.stationary_distribution(), [2 / 3, 1 / 3, 0.0], atol=1e-15)
    assert p.recurrent_part().n_states == 2
    info = analyze(p)
    assert info.n_causal_states == 2
    assert info.statistical_complexity == pytest.approx(np.log2(3) - 2 / 3, abs=1e-9)
    np.testing.assert_allclose(p.reverse().word_probabilities(3),
                               p.word_probabilities(3).transpose(2, 1, 0), atol=1e-15)


@pytest.mark.parametrize("name", ["nemo", "rip", "sns", "mess3", "lohr"])
def test_reverse_generates_the_reversed_words(name: str) -> None:
    p = build_process(name)
    r = p.reverse()
    fw, bw = p.word_probabilities(4), r.word_probabilities(4)
    np.testing.assert_allclose(bw, fw.transpose(3, 2, 1, 0), atol=1e-14)


def test_library_definitions_match_reference_edges() -> None:
    # RIP: A->B:0|p, A->C:1|1-p, B->C:0|q, B->C:1|1-q, C->A:1|1 with p = 0.3, q = 0.8.
    r = build_process("rip", {"p": 0.3, "q": 0.8})
    T = r.matrices
    assert T[0, 0, 1] == 0.3 and T[1, 0, 2] == pytest.approx(0.7) and T[0, 1, 2] == 0.8
    assert T[1, 2, 0] == 1.0
    m = build_process("mess3")
    a, b, x, y = 0.85, 0.075, 0.05, 0.9
    np.testing.assert_allclose(m.matrices[0], [[a * y, b * x, b * x], [a * x, b * y, b * x],
                                               [a * x, b * x, b * y]], atol=1e-15)
    lohr = build_process("lohr", {"p": 0.3})
    np.testing.assert_allclose(lohr.stationary_distribution(), [0.2, 0.2, 0.6], atol=1e-14)
    for name in PROCESSES:
        assert build_process(name).is_irreducible(), name


def test_parameter_errors_say_the_range() -> None:
    with pytest.raises(ConfigError, match=r"valid range is \(0, 0\.5\)"):
        build_process("mess3", {"x": 0.7})
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        build_process("mess3", {"alpah": 0.5})
    with pytest.raises(ConfigError, match="did you mean 'golden-mean'"):
        build_process("golden-men")
    with pytest.raises(ConfigError, match="integer"):
        build_process("period", {"k": 2.5})
    with pytest.raises(ConfigError, match="not a number"):
        build_process("iid", {"p": "abc"})


def test_load_json_edges_and_toml_matrices(tmp_path) -> None:
    f = tmp_path / "gm.json"
    f.write_text(json.dumps({"name": "gm", "edges": [["A", "A", "1", 0.5], ["A", "B", "0", 0.5],
                                                     ["B", "A", "1", 1.0]]}))
    p = load_presentation(f)
    assert p.states == ("A", "B") and p.symbols == ("0", "1")
    assert p.word_probability("00") == 0.0
    t = tmp_path / "coin.toml"
    t.write_text('name = "coin"\nmatrices = [[[0.25]], [[0.75]]]\nsymbols = ["H", "T"]\n')
    assert load_presentation(t).word_probability("TT") == pytest.approx(0.5625)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"matrices": [[[0.5, 0.4], [0.5, 0.5]]]}))
    with pytest.raises(DataError, match="row 0"):
        load_presentation(bad)
    with pytest.raises(DataError, match="does not exist"):
        load_presentation(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot parse"):
        load_presentation(tmp_path / "x.json")
