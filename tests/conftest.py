"""Shared fixtures. ``result_contract`` checks the convention every result type follows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest


def check_result_contract(obj: Any) -> None:
    """Frozen, JSON round-trip through ``to_dict``/``from_dict``, renders as text and HTML."""
    assert dataclasses.is_dataclass(obj), f"{type(obj).__name__} is not a dataclass"
    first = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, first, None)
    d = obj.to_dict()
    text = json.dumps(d, allow_nan=False)  # plain JSON types only, no NaN
    back = type(obj).from_dict(json.loads(text))
    assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(d, sort_keys=True)
    s = str(obj)
    assert isinstance(s, str) and len(s.strip()) > 0
    h = obj._repr_html_()
    assert "<table" in h


@pytest.fixture
def result_contract() -> Callable[[Any], None]:
    return check_result_contract
