"""Reading measurement tables: CSV, TSV, Parquet, JSON lines, JSON; clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from occamlab.errors import ConfigError, DataError
from occamlab.scaling import Kaplan, fit, load_dataset, read_table

FRAME = pd.DataFrame({"N": [1e7, 2e7, 4e7], "D": [1e9, 2e9, 4e9], "loss": [3.1, 2.9, 2.7]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl", ".json"])
def test_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"runs{suffix}"
    if suffix == ".csv":
        FRAME.to_csv(path, index=False)
    elif suffix == ".tsv":
        FRAME.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        FRAME.to_parquet(path)
    elif suffix == ".jsonl":
        FRAME.to_json(path, orient="records", lines=True)
    else:
        FRAME.to_json(path, orient="records")
    pd.testing.assert_frame_equal(read_table(path).astype(float), FRAME)


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("a")
    with pytest.raises(DataError, match="unknown file type"):
        read_table(tmp_path / "x.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("N,D,loss\n")
    with pytest.raises(DataError, match="no rows"):
        read_table(tmp_path / "header.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_bundled_datasets() -> None:
    p = load_dataset("porian2024")
    g = load_dataset("gadre2024")
    assert len(p) == 1745 and len(g) == 104
    assert sum(c.startswith("task_") for c in g.columns) == 46
    assert np.all(g["C"] > 0)
    with pytest.raises(ConfigError, match="did you mean 'gadre2024'"):
        load_dataset("gadre")


def test_kaplan_form_recovers_its_parameters() -> None:
    truth = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    N = np.repeat(np.geomspace(1e6, 1e10, 6), 6)
    D = np.tile(np.geomspace(1e8, 1e12, 6), 6)
    L = Kaplan().predict(truth, N=N, D=D)
    res = fit(Kaplan(), {"N": N, "D": D, "loss": L}, loss_fn="lsq")
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=1e-4), k
