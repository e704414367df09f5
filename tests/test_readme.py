"""The README stays an operator's five-minute read, and the generated config reference stays the models' own."""

import re
from pathlib import Path

from config import reference

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_config_reference_is_current():
    assert reference.REFERENCE.read_text() == reference.document(), f"run: {reference.COMMAND}"


def test_readme_is_short():
    assert len(README.read_bytes()) < 15_000, "the README is an index: put long prose in docs/"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make plan" in text and "make test" in text


def test_every_relative_link_in_the_docs_resolves():
    pages = [README, ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_readme_indexes_every_runbook():
    text = README.read_text()
    missing = [p.name for p in sorted((ROOT / "docs" / "runbooks").glob("*.md")) if f"docs/runbooks/{p.name}" not in text]
    assert missing == []
