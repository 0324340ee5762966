"""The layering rules of ARCHITECTURE.md, checked by parsing imports (absolute and relative, at
module level and inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "occamlab"
LIBRARIES = ["processes", "slt", "scaling", "train"]
FORBIDDEN_FOR_LIBRARIES = LIBRARIES + ["experiments", "store", "reports", "cli"]


def _module_name(path: Path) -> str:
    parts = ["occamlab", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{a.name}" for a in node.names)
    return names


def test_relative_imports_are_resolved() -> None:
    # the checker itself: a relative import across libraries must be seen
    names = _imports(SRC / "experiments" / "_registry.py")
    assert any(n.startswith("occamlab.") for n in names)
    fake = SRC / "slt" / "_sgld.py"
    tree_names = _imports(fake)
    assert any(n.startswith("occamlab.slt.") for n in tree_names) or tree_names


def _library_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "occamlab" and len(parts) > 1 else None


@pytest.mark.parametrize("lib", LIBRARIES)
def test_libraries_do_not_import_each_other(lib: str) -> None:
    bad = []
    for path in sorted((SRC / lib).rglob("*.py")):
        for name in _imports(path):
            other = _library_of(name)
            if other in FORBIDDEN_FOR_LIBRARIES and other != lib:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_store_knows_no_library() -> None:
    bad = []
    for path in sorted((SRC / "store").rglob("*.py")):
        for name in _imports(path):
            if _library_of(name) in LIBRARIES + ["experiments", "reports", "cli"]:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_private_modules_stay_inside_their_package() -> None:
    """``occamlab.scaling._plot`` is scaling's own: other packages use ``occamlab.scaling``."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        mine = _library_of(_module_name(path))
        for name in _imports(path):
            parts = name.split(".")
            if (len(parts) > 2 and parts[0] == "occamlab" and parts[2].startswith("_")
                    and parts[1] != mine and not parts[1].startswith("_")):
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
