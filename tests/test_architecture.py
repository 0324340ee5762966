"""The layering rules of ARCHITECTURE.md, checked by parsing imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "occamlab"
LIBRARIES = ["processes", "slt", "scaling", "train"]
FORBIDDEN_FOR_LIBRARIES = LIBRARIES + ["experiments", "store", "reports", "cli"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("lib", LIBRARIES)
def test_libraries_do_not_import_each_other(lib: str) -> None:
    bad = []
    for path in sorted((SRC / lib).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "occamlab" and len(parts) > 1 and parts[1] in FORBIDDEN_FOR_LIBRARIES:
                if parts[1] != lib:
                    bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_store_knows_no_library() -> None:
    bad = []
    for path in sorted((SRC / "store").rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "occamlab" and len(parts) > 1 and parts[1] in LIBRARIES:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ["occamlab.scaling", "occamlab.cli", "occamlab.processes",
                                    "occamlab.store", "occamlab.experiments"])
def test_light_modules_do_not_import_torch(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('torch', 'matplotlib.pyplot', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()} at import time"
