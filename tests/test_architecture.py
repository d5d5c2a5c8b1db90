"""The import rules the layout depends on, checked over the source (no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement in ``path``, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules(package: str) -> list[Path]:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, package
    return files


def _top(module: str) -> str:
    return module.split(".")[0]


def test_ser_model_never_imports_the_assistant():
    """ser_model is a library the assistant uses; the dependency runs one way only."""
    bad = [f"{p.relative_to(REPO_ROOT)}:{line} imports {mod}"
           for p in _modules("ser_model") for line, mod in _imports(p) if _top(mod) in {"assistant", "bench", "tests"}]
    assert bad == [], "\n".join(bad)


def test_the_assistant_reaches_tensorflow_only_through_ser_model():
    bad = [f"{p.relative_to(REPO_ROOT)}:{line} imports {mod}"
           for p in _modules("assistant") for line, mod in _imports(p) if _top(mod) in {"tensorflow", "keras"}]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("heavy", ["tensorflow", "keras"])
def test_tensorflow_and_keras_are_imported_in_one_place(heavy):
    """ser_model/tf_quiet.py sets the logging environment before TensorFlow loads; an import
    anywhere else could run first and let TensorFlow's start-up lines reach the user."""
    bad = [f"{p.relative_to(REPO_ROOT)}:{line} imports {mod}"
           for p in _modules("ser_model") if p.name != "tf_quiet.py"
           for line, mod in _imports(p) if _top(mod) == heavy]
    assert bad == [], "\n".join(bad)
