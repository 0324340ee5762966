"""The library of named processes (definitions exactly as in REFERENCE.md / the CMPy library).

Each entry documents its parameters, defaults and valid ranges; :func:`build_process` validates
them. User processes come from a JSON or TOML file of matrices (:func:`load_presentation`).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import ConfigError, DataError, suggest
from occamlab.processes._presentation import Presentation

__all__ = [
    "ProcessSpec", "Param", "PROCESSES", "build_process", "load_presentation", "edges_to_matrices",
    "ProcessList", "list_processes", "save_presentation",
]


@dataclass(frozen=True)
class Param:
    """A process parameter: default, closed/open range and meaning."""

    name: str
    default: float
    low: float
    high: float
    doc: str
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def check(self, process: str, value: float) -> float:
        lo_ok = value > self.low if self.low_open else value >= self.low
        hi_ok = value < self.high if self.high_open else value <= self.high
        if self.integer and value != int(value):
            raise ConfigError(f"{process}: parameter {self.name} must be an integer, got {value}")
        if not (lo_ok and hi_ok and math.isfinite(value)):
            raise ConfigError(
                f"{process}: parameter {self.name}={value:g} is out of range; valid range is "
                f"{self.range_text()}"
            )
        return int(value) if self.integer else float(value)

    def range_text(self) -> str:
        lb = "(" if self.low_open else "["
        rb = ")" if self.high_open else "]"
        hi = "inf" if math.isinf(self.high) else f"{self.high:g}"
        return f"{lb}{self.low:g}, {hi}{rb}"


@dataclass(frozen=True)
class ProcessSpec:
    """A named process: its builder, parameters and a one-line description."""

    name: str
    doc: str
    params: tuple[Param, ...]
    builder: Callable[..., Presentation]


Edge = tuple[str, str, str, float]


def edges_to_matrices(
    edges: list[Edge], states: list[str], symbols: list[str]
) -> np.ndarray:
    """Matrices from edges ``(source, target, symbol, probability)`` (REFERENCE.md's notation)."""
    si = {s: i for i, s in enumerate(states)}
    xi = {x: i for i, x in enumerate(symbols)}
    T = np.zeros((len(symbols), len(states), len(states)))
    for src, dst, sym, p in edges:
        T[xi[sym], si[src], si[dst]] += p
    return T


def _from_edges(name: str, edges: list[Edge], states: list[str], symbols: list[str],
                **params: Any) -> Presentation:
    return Presentation(edges_to_matrices(edges, states, symbols), symbols=tuple(symbols),
                        states=tuple(states), name=name, params=params)


def _binary_markov(p: float, q: float) -> Presentation:
    # States are "last symbol 0" (A) and "last symbol 1" (B); p = Pr(1|0), q = Pr(0|1).
    return _from_edges("binary-markov", [("A", "A", "0", 1 - p), ("A", "B", "1", p),
                                         ("B", "A", "0", q), ("B", "B", "1", 1 - q)],
                       ["A", "B"], ["0", "1"], p=p, q=q)


def _iid(p: float) -> Presentation:
    return _from_edges("iid", [("A", "A", "0", 1 - p), ("A", "A", "1", p)], ["A"], ["0", "1"],
                       p=p)


def _golden_mean(p: float) -> Presentation:
    return _from_edges("golden-mean", [("A", "A", "1", p), ("A", "B", "0", 1 - p),
                                       ("B", "A", "1", 1.0)], ["A", "B"], ["0", "1"], p=p)


def _even(p: float) -> Presentation:
    return _from_edges("even", [("A", "A", "0", p), ("A", "B", "1", 1 - p),
                                ("B", "A", "1", 1.0)], ["A", "B"], ["0", "1"], p=p)


def _period(k: int) -> Presentation:
    # Word 0^(k-1) 1 repeated: state i emits 1 when i == k - 1, else 0.
    k = int(k)
    states = [f"P{i}" for i in range(k)]
    edges = [(states[i], states[(i + 1) % k], "1" if i == k - 1 else "0", 1.0) for i in range(k)]
    return _from_edges("period", edges, states, ["0", "1"], k=k)


def _rip(p: float, q: float) -> Presentation:
    return _from_edges("rip", [("A", "B", "0", p), ("A", "C", "1", 1 - p), ("B", "C", "0", q),
                               ("B", "C", "1", 1 - q), ("C", "A", "1", 1.0)],
                       ["A", "B", "C"], ["0", "1"], p=p, q=q)


def _nemo(p: float, q: float) -> Presentation:
    return _from_edges("nemo", [("A", "A", "1", p), ("A", "B", "0", 1 - p), ("B", "C", "0", 1.0),
                                ("C", "A", "0", 1 - q), ("C", "A", "1", q)],
                       ["A", "B", "C"], ["0", "1"], p=p, q=q)


def _rrxor() -> Presentation:
    h = 0.5
    return _from_edges("rrxor", [("S", "S0", "0", h), ("S", "S1", "1", h), ("S0", "F", "0", h),
                                 ("S0", "T", "1", h), ("S1", "T", "0", h), ("S1", "F", "1", h),
                                 ("T", "S", "1", 1.0), ("F", "S", "0", 1.0)],
                       ["S", "S0", "S1", "T", "F"], ["0", "1"])


def _z1r(p: float) -> Presentation:
    return _from_edges("z1r", [("Z", "O", "0", 1.0), ("O", "R", "1", 1.0), ("R", "Z", "0", p),
                               ("R", "Z", "1", 1 - p)], ["Z", "O", "R"], ["0", "1"], p=p)


def _sns(p: float, q: float) -> Presentation:
    return _from_edges("sns", [("A", "A", "1", p), ("A", "B", "1", 1 - p), ("B", "A", "0", q),
                               ("B", "B", "1", 1 - q)], ["A", "B"], ["0", "1"], p=p, q=q)


def _mess3(x: float, alpha: float) -> Presentation:
    b = (1.0 - alpha) / 2.0
    y = 1.0 - 2.0 * x
    move = np.full((3, 3), x)
    np.fill_diagonal(move, y)  # move[i, j] = Pr(hidden i -> j)
    T = np.empty((3, 3, 3))
    for s in range(3):
        emit = np.full(3, b)
        emit[s] = alpha  # emit label s with prob alpha when moving to state s
        T[s] = move * emit[None, :]
    return Presentation(T, symbols=("A", "B", "C"), states=("A", "B", "C"), name="mess3",
                        params={"x": x, "alpha": alpha})


def _lohr(p: float) -> Presentation:
    T0 = [[1 - 2 * p, 0, 2 * p], [0, 0, 0], [0.5 - p, 0, p]]
    T1 = [[0, 0, 0], [0, 1 - 2 * p, 2 * p], [0, 0.5 - p, p]]
    return Presentation([T0, T1], symbols=("0", "1"), states=("copy-0", "copy-1", "fresh"),
                        name="lohr", params={"p": p})


_HALF = "(CMPy default 1/2)"
PROCESSES: dict[str, ProcessSpec] = {
    s.name: s
    for s in [
        ProcessSpec("iid", "biased coin: Pr(1) = p", (Param("p", 0.5, 0, 1, "Pr(1)"),), _iid),
        ProcessSpec(
            "binary-markov", "binary Markov chain with flip probabilities p = Pr(1|0), q = Pr(0|1)",
            (Param("p", 0.4, 0, 1, "flip probability Pr(1|0)", low_open=True),
             Param("q", 0.4, 0, 1, "flip probability Pr(0|1)", low_open=True)), _binary_markov),
        ProcessSpec("golden-mean", "no two 0s in a row: A->A:1|p, A->B:0|1-p, B->A:1|1",
                    (Param("p", 0.5, 0, 1, f"Pr(1|A) {_HALF}", low_open=True, high_open=True),),
                    _golden_mean),
        ProcessSpec("even", "1s come in even blocks: A->A:0|p, A->B:1|1-p, B->A:1|1",
                    (Param("p", 0.5, 0, 1, f"Pr(0|A) {_HALF}", low_open=True, high_open=True),),
                    _even),
        ProcessSpec("period", "the word 0^(k-1) 1 repeated",
                    (Param("k", 3, 1, 4096, "period", integer=True),), _period),
        ProcessSpec("rip", "random insertion process",
                    (Param("p", 0.5, 0, 1, f"Pr(0|A) {_HALF}", low_open=True, high_open=True),
                     Param("q", 0.5, 0, 1, f"Pr(0|B) {_HALF}", low_open=True, high_open=True)),
                    _rip),
        ProcessSpec("nemo", "the Nemo process",
                    (Param("p", 0.5, 0, 1, f"Pr(1|A) {_HALF}", low_open=True, high_open=True),
                     Param("q", 0.5, 0, 1, f"Pr(1|C) {_HALF}", low_open=True, high_open=True)),
                    _nemo),
        ProcessSpec("rrxor", "two fair random bits, then their XOR", (), _rrxor),
        ProcessSpec("z1r", "zero-one-random: 0, 1, then a p-coin",
                    (Param("p", 0.5, 0, 1, f"Pr(0|R) {_HALF}"),), _z1r),
        ProcessSpec("sns", "simple nonunifilar source (infinitely many causal states)",
                    (Param("p", 0.5, 0, 1, f"Pr(A->A) {_HALF}", low_open=True, high_open=True),
                     Param("q", 0.5, 0, 1, f"Pr(B->A) {_HALF}", low_open=True, high_open=True)),
                    _sns),
        ProcessSpec("mess3", "Mess3 of Shai et al. (3 states, 3 symbols, fractal beliefs)",
                    (Param("x", 0.05, 0, 0.5, "probability of moving to each other state",
                           low_open=True, high_open=True),
                     Param("alpha", 0.85, 0, 1, "probability of emitting the new state's label")),
                    _mess3),
        ProcessSpec("lohr", "Lohr's 3-state generator of the binary Markov process with p = q",
                    (Param("p", 0.4, 0, 0.5, "flip probability p = q", low_open=True),), _lohr),
    ]
}


def build_process(name: str, params: Mapping[str, Any] | None = None) -> Presentation:
    """Build a named process, validating its parameters.

    Parameters
    ----------
    name : str
        One of ``PROCESSES`` (lower case with hyphens, e.g. ``"binary-markov"``).
    params : mapping of str to number or str, optional
        Overrides of the defaults; strings are parsed as floats.

    Raises
    ------
    ConfigError
        Unknown process or parameter, or a value out of its valid range (the range is named).
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in PROCESSES:
        raise ConfigError(
            f"unknown process {name!r}{suggest(key, PROCESSES)}; known: {', '.join(PROCESSES)}"
        )
    spec = PROCESSES[key]
    given = dict(params or {})
    allowed = {p.name: p for p in spec.params}
    values: dict[str, Any] = {}
    for k, v in given.items():
        if k not in allowed:
            raise ConfigError(
                f"{key} has no parameter {k!r}{suggest(k, allowed)}; parameters: "
                f"{', '.join(allowed) or 'none'}"
            )
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: parameter {k}={v!r} is not a number") from None
        values[k] = allowed[k].check(key, fv)
    for p in spec.params:
        values.setdefault(p.name, p.default)
    return spec.builder(**values)


def load_presentation(path: str | Path) -> Presentation:
    """Read a user process from a JSON or TOML file.

    The file holds ``matrices`` (list over symbols of square lists), optional ``symbols``,
    ``states`` and ``name``; or ``edges`` as ``[[source, target, symbol, probability], ...]``.

    Raises
    ------
    DataError
        Missing file, unreadable format, missing keys, or invalid matrices (names the file).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"process file {str(path)!r} is a folder; give a JSON or TOML file")
    if not path.is_file():
        raise DataError(f"process file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"process file {str(path)!r} is not UTF-8 text (byte {exc.start}); "
                        "give a JSON or TOML file") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"cannot parse process file {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"process file {str(path)!r} must hold a table/object at the top level")
    name = str(data.get("name", path.stem))
    try:
        if "edges" in data:
            edges = [(str(s), str(t), str(x), float(p)) for s, t, x, p in data["edges"]]
            states = list(data.get("states") or dict.fromkeys(e[0] for e in edges))
            for e in edges:
                if e[1] not in states:
                    states.append(e[1])
            symbols = list(data.get("symbols") or sorted({e[2] for e in edges}))
            mats = edges_to_matrices(edges, states, symbols)
        elif "matrices" in data:
            mats = data["matrices"]
            states, symbols = data.get("states", ()), data.get("symbols", ())
        else:
            raise DataError(f"process file {str(path)!r} needs a 'matrices' or 'edges' key")
        return Presentation(mats, symbols=tuple(symbols), states=tuple(states), name=name)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise DataError(f"{str(path)!r}: {exc}") from None
        raise DataError(f"malformed process file {str(path)!r}: {exc}") from None


def save_presentation(presentation: Presentation, path: str | Path) -> str:
    """Write ``presentation`` as a JSON process file (``name``, ``symbols``, ``states``,
    ``matrices``, ``params``) atomically; :func:`load_presentation` and
    ``occam process info --file`` read it back. Returns the path.

    Raises
    ------
    ConfigError
        A path that does not end in ``.json``.
    """
    from occamlab._io import atomic_write_json

    if not str(path).lower().endswith(".json"):
        raise ConfigError(f"a process is saved to a .json file, got {str(path)!r}")
    atomic_write_json(path, presentation.to_dict())
    return str(path)


@dataclass(frozen=True)
class ProcessList(Rendered):
    """The library's processes: name, description, and each parameter's default, range and
    meaning (what ``occam process list`` prints)."""

    processes: tuple[dict[str, Any], ...]

    def _tables(self) -> list[Table]:
        rows = [[p["name"], ", ".join(f"{q['name']}={q['default']:g} in {q['range']}"
                                      for q in p["params"]) or "-", p["doc"]]
                for p in self.processes]
        return [Table("Processes of the library", ["name", "parameters", "description"], rows,
                      ["build one with build_process(name, {param: value}) or "
                       "`occam process info NAME --param k=v`"])]


def list_processes() -> ProcessList:
    """Every process of :data:`PROCESSES` with its parameters."""
    return ProcessList(tuple(
        {"name": spec.name, "doc": spec.doc,
         "params": [{"name": q.name, "default": q.default, "range": q.range_text(), "doc": q.doc}
                    for q in spec.params]}
        for spec in PROCESSES.values()))
