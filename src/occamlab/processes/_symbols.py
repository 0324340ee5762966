"""Reading and checking symbol sequences for inference: ``.npz`` from ``save_samples`` or ``.npy``.

Symbols are non-negative integer indices into an alphabet, one sequence (1-D) or a batch of equal
length sequences (2-D, one per row). Files are read with ``allow_pickle=False``: nothing in them
is executed.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from occamlab.errors import ConfigError, DataError

__all__ = ["load_symbols", "check_symbols"]


def load_symbols(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Read symbols from ``path``: ``(symbols, symbol_names)``.

    A ``.npz`` file is what ``occam process sample ... --out F.npz`` (:func:`save_samples`)
    writes: its ``symbols`` array (B, L) and, when present, ``symbol_names``. A ``.npy`` file holds
    an integer array, 1-D or (B, L), and no names.

    Raises
    ------
    ConfigError
        A file name that ends neither in ``.npz`` nor ``.npy``.
    DataError
        A missing, empty or unreadable file, a pickled (object) array, or an ``.npz`` file without
        a ``symbols`` array (the file is named).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ConfigError(f"samples must be a .npz file (from `occam process sample`) or a .npy "
                          f"integer array, got {str(p)!r}")
    if not p.is_file():
        raise DataError(f"samples file {str(p)!r} does not exist")
    if p.stat().st_size == 0:
        raise DataError(f"samples file {str(p)!r} is empty")
    with p.open("rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"\x93NUMPY" if suffix == ".npy" else b"PK"):
        raise DataError(f"cannot read {str(p)!r}: not a {suffix} file (numpy.save / "
                        "numpy.savez writes one)")
    try:
        loaded: Any = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{str(p)!r} holds a pickled object array; save the symbols as an "
                            "integer array (nothing pickled is loaded)") from None
        raise DataError(f"cannot read {str(p)!r}: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {str(p)!r} as {suffix}: {exc}") from None
    names: tuple[str, ...] | None = None
    if suffix == ".npz":
        with loaded as z:
            keys = list(z.keys())
            if "symbols" not in keys:
                raise DataError(f"{str(p)!r} has no 'symbols' array (arrays: "
                                f"{', '.join(keys) or 'none'}); write it with `occam process "
                                "sample --out F.npz` or np.savez(F, symbols=...)")
            try:
                arr = z["symbols"]
                if "symbol_names" in keys:
                    names = tuple(str(s) for s in z["symbol_names"].tolist())
            except ValueError as exc:
                raise DataError(f"{str(p)!r}: {exc} (pickled arrays are not loaded)") from None
    else:
        arr = loaded
    return np.asarray(arr), names


def check_symbols(
    symbols: Any, *, names: Sequence[str] | None, min_length: int, where: str = "symbols",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Validate a symbol array; returns it as int64 of shape (B, L) and the alphabet's names.

    The alphabet is ``names`` when given (values must lie below ``len(names)``), else
    ``"0" .. str(max)``. Each sequence must hold at least ``min_length`` symbols and at least two
    distinct symbols must occur.

    Raises
    ------
    DataError
        Not an integer array, not 1-D or 2-D, empty, a negative symbol or one outside the alphabet
        (its value and position are named), sequences shorter than ``min_length``, or one symbol
        only.
    """
    arr = np.asarray(symbols)
    if arr.dtype == object or arr.dtype.kind not in "iub":
        raise DataError(f"{where} must be an integer array of symbol indices, got dtype "
                        f"{arr.dtype}")
    if arr.ndim not in (1, 2):
        raise DataError(f"{where} must be 1-D (one sequence) or 2-D (sequences x symbols), got "
                        f"shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{where} is empty (shape {arr.shape})")
    X = np.atleast_2d(arr).astype(np.int64)
    if X.min() < 0:
        pos = tuple(int(v) for v in np.unravel_index(int(np.argmin(X)), X.shape))
        raise DataError(f"{where} holds a negative symbol {int(X.min())} at (sequence, position) "
                        f"{pos}; symbols are indices 0 .. k-1")
    top = int(X.max())
    if names is not None:
        alphabet = tuple(str(s) for s in names)
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise DataError(f"symbol names must be distinct and non-empty, got {alphabet}")
        if top >= len(alphabet):
            pos = tuple(int(v) for v in np.unravel_index(int(np.argmax(X)), X.shape))
            raise DataError(f"{where} holds symbol {top} at (sequence, position) {pos}, outside "
                            f"the alphabet {alphabet} of {len(alphabet)} symbols")
    else:
        alphabet = tuple(str(i) for i in range(top + 1))
    if X.shape[1] < min_length:
        raise DataError(f"{where}: sequences of {X.shape[1]} symbols are too short; the history "
                        f"length and future length asked for need at least {min_length}")
    seen = np.unique(X)
    if seen.size < 2:
        raise DataError(f"{where}: only one symbol ({alphabet[int(seen[0])]!r}) occurs; a "
                        "constant sequence has nothing to infer")
    return X, alphabet
