"""The documentation stands alone: the API reference builds without warnings, every module
is classed public or internal, and every pointer to a document leads to a file of the repository."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.beam import REPO_ROOT

PACKAGES = ["dist_proto", "python_actors", "bridge"]
NOTES_OUTSIDE_THE_REPOSITORY = re.compile(r"\b(DESIGN|DISTRIBUTION|RUNTIMES|DEVELOPERS|STYLE)\.md\b")
DOC_POINTER = re.compile(r"\b((?:docs|examples|docker)/[\w./-]+\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".py", ".md", ".erl", ".ex", ".exs", ".src", ".config", ".toml", ".yaml", ".yml", ""}
    return [REPO_ROOT / p for p in out
            if (REPO_ROOT / p).is_file() and Path(p).suffix in suffixes and "figures" not in p]


def test_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO_ROOT / "docs" / "build_api.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in ("index.html", "dist_proto.html", "python_actors.html", "bridge.html",
                 "python_actors/testing.html"):
        assert (tmp_path / page).exists(), page
    node_page = (tmp_path / "bridge.html").read_text()
    assert "BlockingNode" in node_page and "allow_spawn" in node_page


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_classed_public_or_internal(package: str) -> None:
    api = (REPO_ROOT / "docs" / "api.md").read_text()
    module = __import__(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.name == "__main__":
            continue
        assert f"`{info.name}`" in api or f"{package}.{info.name}" in api, (
            f"docs/api.md does not say whether {package}.{info.name} is public or internal")


def test_no_pointer_to_notes_outside_the_repository() -> None:
    offenders = [f"{path.relative_to(REPO_ROOT)}:{n}" for path in tracked_text_files()
                 for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                 if NOTES_OUTSIDE_THE_REPOSITORY.search(line)
                 and path.relative_to(REPO_ROOT) != Path("tests/test_docs.py")]
    assert not offenders, offenders


def test_pointers_to_documents_lead_to_files() -> None:
    missing = []
    for path in tracked_text_files():
        text = path.read_text(errors="replace")
        for target in DOC_POINTER.findall(text):
            if not (REPO_ROOT / target).exists():
                missing.append(f"{path.relative_to(REPO_ROOT)} -> {target}")
        if path.suffix == ".md":
            for link in MARKDOWN_LINK.findall(text):
                if "://" in link or link.startswith("mailto:"):
                    continue
                if not (path.parent / link).exists():
                    missing.append(f"{path.relative_to(REPO_ROOT)} -> {link}")
    assert not missing, missing
