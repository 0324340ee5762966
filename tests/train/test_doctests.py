"""The examples in the training engine's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["occamlab.train._data", "occamlab.train._kernels", "occamlab.train._lm",
                                    "occamlab.train._model", "occamlab.train._generate"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
