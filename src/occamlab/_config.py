"""Typed configs and plain JSON: reading TOML, ``--set`` overrides, dotted keys, and building frozen
dataclasses from nested mappings (the one place every config reader goes through).

Precedence is defaults < TOML file < ``--set key=value`` (ARCHITECTURE.md, convention 2)::

    data = load_dotted("configs/train-tiny.toml", {"model.d_model": "32"})
    config = config_from_dict(TrainConfig, data, source="configs/train-tiny.toml: ")

Keys are dotted paths into nested tables (``model.d_model``). Unknown keys are a
:class:`~occamlab.errors.ConfigError` that names the key, where it came from and the nearest
allowed key; values are checked against the dataclass's type hints.

:func:`from_plain` is the same decoder used leniently, to read back what ``to_dict`` wrote
(``None`` stands for a non-finite float, since JSON has no NaN).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Self

from occamlab._json import jsonable
from occamlab.errors import ConfigError, DataError, suggest

__all__ = [
    "read_toml",
    "parse_scalar",
    "load_dotted",
    "set_dotted",
    "apply_overrides",
    "flatten",
    "config_from_dict",
    "config_types",
    "config_keys",
    "is_int_type",
    "from_plain",
    "ConfigBase",
]


# ---- TOML and --set ------------------------------------------------------------------------
def read_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """The TOML document at ``path``; a :class:`ConfigError` naming the file when it is missing,
    unreadable, not UTF-8 text, or not valid TOML."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {str(p)!r} is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {str(p)!r} is not a text file (TOML expected)") from None
    except OSError as exc:
        raise ConfigError(f"{what} {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value (``3e-3``, ``true``, ``"x"``, ``[1, 2]``), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    """``d["a"]["b"] = value`` for ``dotted = "a.b"``, creating tables on the way (in place)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{dotted!r} is not a dotted key (empty part)")
    node = d
    for i, p in enumerate(parts[:-1]):
        if p not in node:
            node[p] = {}
        elif not isinstance(node[p], dict):
            raise ConfigError(f"{dotted}: {'.'.join(parts[:i + 1])!r} is a value, not a table")
        node = node[p]
    node[parts[-1]] = value


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each dotted override set (``{"model.d_model": 32}``)."""
    out = copy.deepcopy(dict(base))
    for dotted, value in overrides.items():
        set_dotted(out, dotted, value)
    return out


def load_dotted(path: str | Path | None, overrides: Mapping[str, str] | None = None, *,
                table: str | None = None, what: str = "config file") -> dict[str, Any]:
    """A TOML file (or nothing) with ``--set`` overrides applied.

    Override values stay text: :func:`config_from_dict` parses a string as a TOML value where the
    field is not a string, so ``--set data.corpus=123`` stays the name ``"123"``.
    ``table``: read that table of the file when it has one (``[sgld]``), else the whole file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(path, what=what)
        if table is not None and isinstance(data.get(table), dict):
            data = data[table]
    return apply_overrides(data, dict(overrides or {}))


def flatten(d: Mapping[str, Any], prefix: str = "", *, lists_as_json: bool = False
            ) -> dict[str, Any]:
    """``{"model": {"d_model": 8}}`` -> ``{"model.d_model": 8}``; ``lists_as_json`` writes lists
    and tuples as JSON text (one table cell)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + ".", lists_as_json=lists_as_json))
        elif lists_as_json and isinstance(v, list | tuple):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


# ---- dataclass schemas ---------------------------------------------------------------------
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_types(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted field name -> type hint of dataclass ``cls``, nested dataclasses expanded."""
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(config_types(tp, f"{prefix}{f.name}."))  # type: ignore[arg-type]
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


def config_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted names of the fields of dataclass ``cls``, nested dataclasses expanded."""
    return list(config_types(cls, prefix))


def is_int_type(tp: Any) -> bool:
    """``int`` or ``int | None``."""
    if tp is int:
        return True
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return len(args) == 1 and args[0] is int


# ---- the decoder ---------------------------------------------------------------------------
def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _decode(value: Any, tp: Any, key: str, strict: bool) -> Any:
    """``value`` (plain JSON or TOML) as type ``tp``; ``strict``: a config (strings from ``--set``
    are parsed, ``None`` only where the type allows it); else JSON written by ``to_dict``."""
    err = ConfigError if strict else DataError
    if tp is Any or tp is object:
        return value
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None or (strict and isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _decode(value, a, key, strict)
            except (ConfigError, DataError):
                continue
        raise err(f"{key}: cannot use {value!r} (expected {_type_name(tp)})")
    if strict and isinstance(value, str) and tp is not str:
        value = parse_scalar(value)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(repr(a) for a in typing.get_args(tp))
            raise err(f"{key} must be one of {allowed}, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise err(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise err(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if value is None and not strict:
            return math.nan  # JSON has no NaN: to_dict wrote it as null
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise err(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise err(f"{key} must be a string, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise err(f"{key} must be a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise err(f"{key} must have {len(args)} items, got {len(value)}")
            return tuple(_decode(v, a, f"{key}[{i}]", strict)
                         for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        items = [_decode(v, item, f"{key}[{i}]", strict) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise err(f"{key} must be a table, got {value!r}")
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _decode(v, vt, f"{key}.{k}", strict) for k, v in value.items()}
    if tp in (tuple, list):
        if not isinstance(value, list | tuple):
            raise err(f"{key} must be a list, got {value!r}")
        return tp(value)
    if dataclasses.is_dataclass(tp):
        own = getattr(tp, "from_dict", None)
        if own is not None:
            return own(value)
        return _build(tp, value, key, strict, source="")  # type: ignore[arg-type]
    if tp is Fraction:
        try:
            return Fraction(value)
        except (TypeError, ValueError, ZeroDivisionError):
            raise err(f"{key} must be an exact fraction such as '7/2', got {value!r}") from None
    if isinstance(tp, type) and tp.__module__ == "numpy" and tp.__name__ == "ndarray":
        import numpy as np

        return np.array(value, dtype=float)  # None (a NaN written by to_dict) reads as nan
    raise err(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _default_dict(f: dataclasses.Field[Any]) -> dict[str, Any]:
    """The plain dict of a dataclass field's default value (``{}`` when it has none)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return {}
    if not dataclasses.is_dataclass(default) or isinstance(default, type):
        return {}
    return dataclasses.asdict(default)


def _build(cls: type, d: Any, where: str, strict: bool, *, source: str) -> Any:
    err = ConfigError if strict else DataError
    if not isinstance(d, Mapping):
        raise err(f"{source}{where or cls.__name__} must be a table, got {d!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise err(
                f"{source}unknown {'config key' if strict else 'key'} {full!r}"
                f"{suggest(str(key), names)}; allowed{' in ' + where if where else ''}: "
                f"{', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and strict:
            # a nested table updates the field's own default (which may differ from the nested
            # class's defaults), so giving one key keeps the others
            value = apply_overrides(_default_dict(fields[key]), flatten(value)) if isinstance(
                value, Mapping) else value
            kwargs[key] = _build(tp, value, full, strict, source=source)  # type: ignore[arg-type]
        else:
            kwargs[key] = _decode(value, tp, full, strict)
    if not strict:
        missing = [f.name for f in fields.values() if f.name not in kwargs
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise err(f"{cls.__name__}: missing key {missing[0]!r}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None


def config_from_dict(cls: type, d: Mapping[str, Any], *, where: str = "", source: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a (nested) mapping, checking every key and type.

    ``where`` is the dotted path of ``d`` (for messages), ``source`` a prefix naming where the
    values came from (``"configs/x.toml: "``). Strings are parsed as TOML values where the field
    is not a string (``--set steps=20``).

    Raises
    ------
    ConfigError
        An unknown key (with the nearest allowed one), a value of the wrong type, or whatever the
        dataclass's own validation rejects.
    """
    return _build(cls, d, where, True, source=source)


class ConfigBase:
    """Mixin of the frozen config dataclasses: ``to_dict`` (plain JSON by reflection),
    ``from_dict`` (checked: :func:`config_from_dict`) and ``replace`` with dotted keys."""

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return config_from_dict(cls, d)  # type: ignore[no-any-return]

    def replace(self, **overrides: Any) -> Self:
        """A copy with dotted-key overrides, e.g. ``replace(**{"model.d_model": 32})``."""
        return config_from_dict(type(self), apply_overrides(self.to_dict(), overrides))  # type: ignore[no-any-return]


def from_plain(cls: type, d: Mapping[str, Any]) -> Any:
    """Rebuild dataclass ``cls`` from what its ``to_dict`` wrote (the inverse of reflection).

    Type hints drive the decoding: tuples come back as tuples, nested results through their own
    ``from_dict``, and ``None`` in a ``float`` field as ``nan``.

    Raises
    ------
    DataError
        An unknown or missing key, or a value of the wrong type.
    """
    return _build(cls, d, "", False, source="")
