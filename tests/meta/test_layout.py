"""Layout rules of STYLE.md §3.8: no god modules, no utils dumps, a docstring on every module."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "conv3n"
BANNED_NAMES = {"utils", "helpers", "common", "misc"}
SIZE_LIMIT = 600
SIZE_WAIVERS: set[Path] = set()


def python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_source_tree_is_found():
    assert len(python_files()) > 20


def test_module_names_and_sizes():
    for path in python_files():
        assert path.stem not in BANNED_NAMES, path
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert path in SIZE_WAIVERS or lines <= SIZE_LIMIT, f"{path}: {lines} lines"


def test_every_module_starts_with_a_docstring():
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not tree.body:
            continue
        assert ast.get_docstring(tree), f"{path} has no module docstring"
