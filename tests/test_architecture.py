"""The direction of dependencies in docs/design.md, and explicit public surfaces."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["dist_proto", "python_actors", "bridge"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py"))


@pytest.mark.parametrize("path", _modules("dist_proto"), ids=lambda p: p.name)
def test_dist_proto_uses_the_standard_library_only(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top == "dist_proto", f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("python_actors"), ids=lambda p: p.name)
def test_python_actors_imports_only_term_types(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "dist_proto":
            assert name in ("dist_proto.terms", "dist_proto"), f"{path.name} imports {name}"
        else:
            assert top in sys.stdlib_module_names or top == "python_actors", f"{path.name} imports {name}"


@pytest.mark.parametrize("package", ["dist_proto", "python_actors"])
def test_nothing_below_bridge_imports_it(package: str) -> None:
    for path in _modules(package):
        assert not any(n.split(".")[0] == "bridge" for n in _imports(path)), path.name


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_exist(package: str) -> None:
    mod = importlib.import_module(package)
    assert mod.__all__, package
    for name in mod.__all__:
        assert hasattr(mod, name), f"{package}.__all__ names missing {name}"
    for info in pkgutil.iter_modules(mod.__path__):
        if info.name == "__main__":
            continue
        sub = importlib.import_module(f"{package}.{info.name}")
        for name in getattr(sub, "__all__", []):
            assert hasattr(sub, name), f"{package}.{info.name}.__all__ names missing {name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_typed_marker(package: str) -> None:
    assert (ROOT / package / "py.typed").exists()
