"""The documentation: the site builds with no warning, the README stays a short entry page whose links
resolve, and no docstring or comment cites a file the repository lacks."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200
# Paths into the repository that a docstring or comment may cite, and upper-case Markdown names
# (the kind of file a design note is); paths with placeholders (<name>, {a,b}, *) are templates.
# a path of this repository, not one inside another repository (sinabs/docs/...)
CITED = re.compile(r"(?<![\w/.-])(?:aqsvit|benchmarks|tests|docs|examples|optunahub)/[\w./-]*\w\b|\b[A-Z][A-Z_]+\.md\b")


def test_mkdocs_build_strict_has_no_warning(tmp_path):
    """``mkdocs build --strict``: a broken link or anchor, a page missing from the nav, or a docstring
    mkdocstrings cannot read fails the build."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs is not installed: pip install -e '.[docs]' (the test extra includes it)"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert not [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))], log
    assert (tmp_path / "site" / "reference" / "search" / "index.html").is_file()


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
    for command in ("make run", "make test", "mkdocs serve"):
        assert command in text


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert [p for p in pages if p not in nav] == []


@pytest.mark.parametrize("folder", ["aqsvit", "benchmarks", "tests"])
def test_no_docstring_or_comment_cites_a_missing_file(folder):
    missing = []
    for source in sorted((ROOT / folder).rglob("*.py")):
        for number, line in enumerate(source.read_text().splitlines(), 1):
            for cited in CITED.findall(line):
                path = cited.rstrip(".")
                if not (ROOT / path).exists() and not list(ROOT.glob(f"*/{path}")):
                    missing.append(f"{source.relative_to(ROOT)}:{number}: {path}")
    assert not missing, missing
