"""The documents a user reads are in the repository, and every path they name exists in it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def test_the_docs_exist():
    for name in ("architecture.md", "measurement.md"):
        assert (ROOT / "docs" / name).is_file(), name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_document_points_outside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text and "ARCHITECTURE.md" not in text and "MEASUREMENT.md" not in text, doc


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc):
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        if doc.name == "README.md" and doc.parent.name == "student":
            continue  # shipped as a student edition's README: its links are relative to that tree
        assert (doc.parent / target).resolve().exists(), f"{doc.relative_to(ROOT)} links to {target}, which does not exist"


def test_the_module_map_of_the_docs_matches_the_code():
    from tinytorch.tito.tree import MODULE_MAP

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for number, (name, target) in MODULE_MAP.items():
        row = re.search(rf"^\| {number:02d} \| {name} \| (.+) \|$", text, flags=re.M)
        assert row, f"docs/architecture.md has no row for module {number:02d} {name}"
        package = target[:-2] if target.endswith(".*") else target
        assert f"`{package}" in row[1], f"module {number:02d}: the docs say {row[1]!r}, the code {target}"
