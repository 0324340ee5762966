"""The demo suite: the seed's experiments, run through the store and written as one page.

A *suite experiment* is a registered experiment (:mod:`occamlab.experiments._registry`) whose
module also defines

- ``TITLE``: the section title;
- ``Config.quick()`` and ``Config.full()``: the two sizes of ``occam demo``;
- ``plan(config) -> list[Stage]``: its runs, as stages of runs of registered experiments (a later
  stage may name an earlier run's files with ``run:<id>/...``, :mod:`._refs`);
- ``analyze(config, runs: StoredRuns) -> Analysis``: a pure function of the stored runs, returning
  the results (plain JSON: headline numbers with intervals) and the page section, whose numbers
  come from those results;
- optionally ``preflight(config)``: raise an :class:`~occamlab.errors.OccamError` saying what to
  install when a corpus or optional package it needs is missing.

:func:`run_demo` plans every experiment, runs the stages through :func:`run_sweep` into one store
(finished runs are skipped, so a second call resumes), analyses each experiment from the store
and writes ``results.json`` (one key per experiment) and ``index.html``. :func:`build_report`
rebuilds both from the store alone. An experiment that fails does not stop the others: its
section says that it failed and why.
"""

from __future__ import annotations

import os
import platform
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from occamlab import __version__
from occamlab._io import atomic_write_json, atomic_write_text
from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, OccamError, suggest
from occamlab.reports import Page, Section, render_page
from occamlab.store import RunRecord, RunStore, git_commit

from ._registry import RunOutput, get_experiment
from ._spec import PlannedRun
from ._sweep import Progress, run_sweep

__all__ = ["SUITE", "Stage", "Analysis", "StoredRuns", "DemoResult", "DemoProgress", "run_demo",
           "build_report", "suite_names", "MANIFEST"]

# the demo's experiments, in page order
SUITE: tuple[str, ...] = ("chinchilla", "published", "prediction-generation", "transfer",
                          "mdl-slt")
MANIFEST = "demo.json"
MANIFEST_FORMAT = "occamlab.demo"


@dataclass(frozen=True)
class Stage:
    """Runs that can execute together (none needs another's files)."""

    name: str
    runs: tuple[PlannedRun, ...]


@dataclass(frozen=True)
class Analysis:
    """What an experiment's analysis returns: plain-JSON results and its page section."""

    results: dict[str, Any]
    section: Section


class StoredRuns:
    """The stored records of an experiment's planned runs, by stage (what ``analyze`` reads)."""

    def __init__(self, store: RunStore, stages: Sequence[Stage]) -> None:
        self.store = store
        self.stages = {s.name: s for s in stages}

    def _stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise KeyError(f"no stage {name!r}; stages: {', '.join(self.stages)}")
        return self.stages[name]

    def records(self, stage: str) -> list[tuple[PlannedRun, RunRecord | None]]:
        out: list[tuple[PlannedRun, RunRecord | None]] = []
        for r in self._stage(stage).runs:
            try:
                out.append((r, self.store.record(r.id)))
            except OccamError:
                out.append((r, None))
        return out

    def done(self, stage: str) -> list[tuple[PlannedRun, RunRecord]]:
        """The runs of ``stage`` that finished, with their records (result present)."""
        return [(r, rec) for r, rec in self.records(stage)
                if rec is not None and rec.status == "done" and rec.result is not None]

    def failed(self, stage: str) -> list[tuple[PlannedRun, str]]:
        """The runs of ``stage`` that did not finish, with the reason."""
        out = []
        for r, rec in self.records(stage):
            if rec is None:
                out.append((r, "never ran"))
            elif rec.status != "done":
                out.append((r, rec.error or rec.status))
        return out

    def path(self, run: PlannedRun, *parts: str) -> Path:
        return self.store.path(run.id).joinpath(*parts)

    def read_json(self, run: PlannedRun, name: str) -> Any:
        import json

        p = self.path(run, name)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: cannot read the run's {name} ({exc})") from None


def suite_names(only: str | Sequence[str] | None = None) -> list[str]:
    """The suite's experiments (all, or those named, comma-separated or as a list)."""
    if only is None:
        return list(SUITE)
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    if not names:
        raise ConfigError(f"--only names no experiment; the suite has: {', '.join(SUITE)}")
    for n in names:
        if n not in SUITE:
            raise ConfigError(f"unknown experiment {n!r}{suggest(n, SUITE)}; the suite has: "
                              f"{', '.join(SUITE)}")
    return [n for n in SUITE if n in names]


def _module(name: str) -> ModuleType:
    return get_experiment(name).module


# ---- progress --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoProgress:
    """Where the demo is: the experiment running, and runs done / total over the whole demo."""

    experiment: str
    stage: str
    sweep: Progress | None
    done: int
    total: int
    elapsed_s: float

    def line(self) -> str:
        from ._sweep import _clock

        eta = "?"
        if self.done and self.total > self.done:
            eta = _clock(self.elapsed_s / self.done * (self.total - self.done))
        elif self.total and self.done >= self.total:
            eta = "0:00:00"
        sweep = f" ({self.sweep.failed} failed)" if self.sweep and self.sweep.failed else ""
        return (f"[{self.experiment}: {self.stage}] {self.done}/{self.total} runs done{sweep}, "
                f"elapsed {_clock(self.elapsed_s)}, ETA {eta}")


# ---- the demo's result ---------------------------------------------------------------------
@dataclass(frozen=True)
class DemoResult(Rendered):
    """What ``occam demo`` / ``occam report`` did: each experiment's status and headline."""

    out: str
    store: str
    size: str
    experiments: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [e["name"] for e in self.experiments if e["status"] == "failed"]

    def _tables(self) -> list[Table]:
        rows = [[e["name"], e["status"], e.get("n_runs"), e.get("n_failed_runs"),
                 e.get("wall_s"), e["headline"]] for e in self.experiments]
        notes = [f"page: {Path(self.out) / 'index.html'}",
                 f"results: {Path(self.out) / 'results.json'}", f"store: {self.store}"]
        return [Table(f"occam demo ({self.size})", ["experiment", "status", "runs",
                                                    "failed runs", "wall (s)", "headline"],
                      rows, notes)]


# ---- running ---------------------------------------------------------------------------------
def _manifest(store: RunStore) -> dict[str, Any]:
    import json

    p = store.root / MANIFEST
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{store.root} holds no demo (no {MANIFEST}); run `occam demo --store "
                        f"{store.root}` first") from None
    except ValueError as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{p}: not an occamlab demo manifest")
    return doc


def _write_manifest(store: RunStore, size: str, configs: dict[str, Any],
                    run_wall: dict[str, float]) -> None:
    """``STORE/demo.json``: the experiments of the last demo, their size, configs and the wall
    time of their runs (what ``occam report`` needs to rebuild the page)."""
    atomic_write_json(store.root / MANIFEST, {
        "format": MANIFEST_FORMAT, "version": 1, "occamlab": __version__, "size": size,
        "experiments": configs, "run_wall_s": run_wall})


def _provenance(configs: dict[str, Any]) -> dict[str, Any]:
    git = git_commit() or {}
    seeds = sorted({v for c in configs.values() for k, v in _flat(c) if k.endswith("seed")})
    return {"occamlab": __version__,
            "git commit": (git.get("commit", "unknown") + (" (local changes)" if git.get("dirty")
                                                          else "")),
            "seeds": ", ".join(map(str, seeds)) or "-",
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
                       f"{platform.python_version()}",
            "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _flat(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        return [kv for k, v in d.items() for kv in _flat(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), d)]


def _execute(name: str, config: Any, store: RunStore, *, jobs: int, backend: str,
             address: str | None, tick: Callable[[str, Progress | None, int], None]
             ) -> tuple[int, int]:
    """Run every stage of one experiment; returns (runs, failed runs)."""
    mod = _module(name)
    pre = getattr(mod, "preflight", None)
    if pre is not None:
        pre(config)
    stages = mod.plan(config)
    n_runs = n_failed = 0
    for stage in stages:
        base = n_runs

        def show(p: Progress, stage: Stage = stage, base: int = base) -> None:
            tick(stage.name, p, base + p.done + p.skipped + p.failed)

        res = run_sweep(list(stage.runs), store, jobs=jobs, backend=backend, address=address,
                        progress=show)
        n_runs += len(stage.runs)
        n_failed += res.n_failed
        tick(stage.name, None, n_runs)
    return n_runs, n_failed


def _analyze(name: str, config: Any, store: RunStore) -> Analysis:
    """The experiment's analysis. A fit's own diagnostics (convergence, bounds, failed resamples)
    are in its results and flags; numpy's notes on NaN arithmetic in degenerate resamples and the
    fits' ConvergenceWarnings would only repeat them on the console."""
    import warnings

    from occamlab.errors import ConvergenceWarning

    mod = _module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        return mod.analyze(config, StoredRuns(store, mod.plan(config)))  # type: ignore[no-any-return]


def _failed_section(name: str, error: str) -> Section:
    mod = _module(name)
    return Section(key=name, title=getattr(mod, "TITLE", name), headline=f"failed: {error}",
                   question=getattr(mod, "QUESTION", ""), status="failed", error=error)


def _short(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OccamError) else f"{type(exc).__name__}: {exc}"


def _write_outputs(out: Path, names: Sequence[str], size: str, store: RunStore,
                   configs: dict[str, Any], entries: dict[str, dict[str, Any]],
                   sections: dict[str, Section], wall: dict[str, float]) -> None:
    prov = _provenance(configs)
    results = {n: {**entries[n], "provenance": {**prov, "size": size, "wall_s": wall.get(n),
                                                 "config": configs[n]}} for n in names}
    atomic_write_json(out / "results.json", results, indent=1)
    page = Page(title="occamlab: the seed's experiments",
                subtitle=f"{size} size · store {store.root} · occamlab {__version__}",
                sections=[sections[n] for n in names], provenance=prov)
    atomic_write_text(out / "index.html", render_page(page))


def _analyze_all(names: Sequence[str], configs: dict[str, Any], store: RunStore,
                 errors: dict[str, str], wall: dict[str, float]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, Section]]:
    entries: dict[str, dict[str, Any]] = {}
    sections: dict[str, Section] = {}
    for n in names:
        t0 = time.perf_counter()
        cfg = get_experiment(n).make_config(configs[n])
        try:
            if n in errors:
                raise OccamError(errors[n])
            a = _analyze(n, cfg, store)
            sec = a.section
            entries[n] = {"status": sec.status, "headline": sec.headline, "results": a.results}
        except Exception as exc:  # an experiment's failure is reported, not raised
            err = errors.get(n) or _short(exc)
            if n not in errors:
                atomic_write_text(store.root / f"analysis-{n}.traceback.txt",
                                  traceback.format_exc())
            sec = _failed_section(n, err)
            entries[n] = {"status": "failed", "headline": sec.headline, "error": err,
                          "results": None}
        wall[n] = wall.get(n, 0.0) + time.perf_counter() - t0
        sections[n] = Section(**{**sec.__dict__, "wall_s": wall[n]})
    return entries, sections


def run_demo(only: str | Sequence[str] | None = None, *, size: str = "quick",
             out: str | Path = "demo-out", store: str | Path | None = None, jobs: int = 1,
             backend: str = "local", address: str | None = None,
             progress: Callable[[DemoProgress], None] | None = None,
             configs: dict[str, Any] | None = None) -> DemoResult:
    """Run the suite (or the experiments in ``only``) and write the page; see the module doc.

    ``store`` defaults to ``OUT/store``. Finished runs already in the store are not run again.
    ``configs`` replaces the ``size`` preset of the experiments it names (tests, custom runs).
    """
    from ._execute import check_backend

    names = suite_names(only)
    check_backend(jobs, backend, address)
    if size not in ("quick", "full"):
        raise ConfigError(f"--size must be quick or full, got {size!r}")
    out = Path(out)
    chosen = {n: (configs or {}).get(n) or get_experiment(n).preset(size) for n in names}
    plain = {n: c.to_dict() for n, c in chosen.items()}
    if any(n in (configs or {}) for n in names):
        size = "custom"  # a config that is not a preset: say so on the page
    configs = chosen
    total = sum(len(s.runs) for n in names for s in _module(n).plan(configs[n]))  # validates
    st = RunStore(Path(store) if store is not None else out / "store")  # only then: the store
    t_start = time.perf_counter()
    done_before = 0
    errors: dict[str, str] = {}
    wall: dict[str, float] = {}
    counts: dict[str, tuple[int, int]] = {}
    for n in names:
        t0 = time.perf_counter()

        def tick(stage: str, p: Progress | None, done_here: int, n: str = n,
                 before: int = done_before) -> None:
            if progress is not None:
                progress(DemoProgress(n, stage, p, before + done_here, total,
                                      time.perf_counter() - t_start))

        try:
            counts[n] = _execute(n, configs[n], st, jobs=jobs, backend=backend, address=address,
                                 tick=tick)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the others still run; the section says why this one failed
            errors[n] = _short(exc)
            counts[n] = (sum(len(s.runs) for s in _module(n).plan(configs[n])), 0)
        done_before += counts[n][0]
        wall[n] = time.perf_counter() - t0
        _write_manifest(st, size, plain, dict(wall))
    entries, sections = _analyze_all(names, plain, st, errors, wall)
    _write_outputs(out, names, size, st, plain, entries, sections, wall)
    return _demo_result(out, st, size, names, entries, counts, wall,
                        time.perf_counter() - t_start)


def _demo_result(out: Path, st: RunStore, size: str, names: Sequence[str],
                 entries: dict[str, dict[str, Any]], counts: dict[str, tuple[int, int]],
                 wall: dict[str, float], elapsed: float) -> DemoResult:
    rows = tuple({"name": n, "status": entries[n]["status"], "headline": entries[n]["headline"],
                  "n_runs": counts.get(n, (None, None))[0],
                  "n_failed_runs": counts.get(n, (None, None))[1], "wall_s": wall.get(n)}
                 for n in names)
    return DemoResult(out=str(out), store=str(st.root), size=size, experiments=rows,
                      elapsed_s=elapsed)


def run_in_folder(name: str, config: Any, run_dir: str | Path) -> RunOutput:
    """A suite experiment as one run (the experiment contract): its runs execute in this process
    into ``run_dir/store``, and ``run_dir`` receives ``results.json`` and ``index.html``."""
    run_dir = Path(run_dir)
    res = run_demo([name], out=run_dir, store=run_dir / "store", jobs=0,
                   configs={name: config})
    entry = res.experiments[0]
    if entry["status"] == "failed":
        raise OccamError(f"{name}: {entry['headline']}")
    import json

    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))[name]
    return RunOutput({"status": entry["status"], "headline": entry["headline"],
                      "results": results["results"]}, files=("results.json", "index.html",
                                                             "store"))


def _stored_sections(st: RunStore, prices: Any) -> dict[str, tuple[dict[str, Any], Section,
                                                                      list[str], int]]:
    """Sections of the experiments whose analysis reads every stored run of theirs (a module
    ``analyze_runs(records, prices=...)``, e.g. ``lora-finetune`` sweeps): name -> (entry,
    section, run ids, failed runs)."""
    from ._registry import EXPERIMENTS

    by_exp: dict[str, list[RunRecord]] = {}
    for rid in st.ids():
        rec = st.record(rid)
        by_exp.setdefault(rec.experiment, []).append(rec)
    out = {}
    for name, recs in by_exp.items():
        if name not in EXPERIMENTS or not hasattr(_module(name), "analyze_runs"):
            continue
        try:
            a = _module(name).analyze_runs(recs, prices=prices)
            entry = {"status": a.section.status, "headline": a.section.headline,
                     "results": a.results}
            sec = a.section
        except Exception as exc:  # reported in the page, not raised
            atomic_write_text(st.root / f"analysis-{name}.traceback.txt",
                              traceback.format_exc())
            sec = _failed_section(name, _short(exc))
            entry = {"status": "failed", "headline": sec.headline, "error": _short(exc),
                     "results": None}
        out[name] = (entry, sec, [r.id for r in recs], sum(r.status == "failed" for r in recs))
    return out


def build_report(store: str | Path, out: str | Path, *, prices: Any = None) -> DemoResult:
    """Rebuild ``results.json`` and ``index.html`` from the runs in ``store`` (nothing trains).

    The demo's experiments, their size and configs come from the store's demo manifest; the
    runs of experiments analysed from the store alone (``lora-finetune`` sweeps) get their
    sections too, with their ledger's cost at ``prices`` (default: the store's price table).
    """
    t0 = time.perf_counter()
    if not Path(store, "store.json").exists():
        raise DataError(f"no run store at {str(store)!r} (run `occam demo --store DIR` first)")
    st = RunStore(store)
    if prices is None:
        from ._ledger import stored_prices

        prices = stored_prices(st.root)
    stored = _stored_sections(st, prices)
    doc = _manifest(st) if (st.root / MANIFEST).exists() or not stored else {}
    plain: dict[str, Any] = dict(doc.get("experiments", {}))
    names = [n for n in SUITE if n in plain] + [n for n in plain if n not in SUITE]
    size = str(doc.get("size", "sweep"))
    run_wall = dict(doc.get("run_wall_s", {}))
    wall = {n: float(run_wall.get(n, 0.0)) for n in names}  # the analysis adds its own time
    entries, sections = _analyze_all(names, plain, st, {}, wall)
    counts = {}
    for n in names:
        runs = StoredRuns(st, _module(n).plan(get_experiment(n).make_config(plain[n])))
        stages = list(runs.stages)
        counts[n] = (sum(len(runs.stages[s].runs) for s in stages),
                     sum(len(runs.failed(s)) for s in stages))
    for n, (entry, sec, ids, n_failed) in stored.items():
        if n in names:
            continue
        names.append(n)
        entries[n], sections[n], plain[n] = entry, sec, {"runs": ids}
        wall[n], counts[n] = 0.0, (len(ids), n_failed)
    _write_outputs(Path(out), names, size, st, plain, entries, sections, wall)
    return _demo_result(Path(out), st, size, names, entries, counts, wall,
                        time.perf_counter() - t0)
