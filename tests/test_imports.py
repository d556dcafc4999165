"""The import contracts: layers with no upward import, no cycle between the modules or subpackages
of any package, no private module or name used outside its own package.

The first three are import-linter's (``[tool.importlinter]`` in pyproject.toml, the layer order and
why each module sits where it does); this test runs them so that ``make test`` and CI do. grimp
(import-linter's graph) counts imports inside functions too: one that only dodges a cycle at import
time is still a cycle. Private names (``from aqsvit.x.y import _name``) are checked here, on the
syntax tree, since import-linter sees modules only.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aqsvit"


def test_import_contracts_hold():
    try:
        import importlinter  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("import-linter is required in CI (the test extra installs it)")
        pytest.skip("import-linter not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports_across_packages() -> list[str]:
    """Every ``from M import _name`` (a private name or module) whose importer is outside M's
    package, and every import of a ``_module`` from outside the package holding it."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                if parts[0] != "aqsvit":
                    continue
                for i, part in enumerate(parts[1:], start=1):
                    if not _private(part):
                        continue
                    owner = ".".join(parts[:i])  # the package (or module) the private name belongs to
                    owner_package = owner if (ROOT / Path(*parts[:i]) / "__init__.py").exists() \
                        else ".".join(parts[:i - 1])
                    if importer != owner_package and not importer.startswith(owner_package + "."):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {importer} imports {target}")
                    break
    return found


def test_no_private_import_across_packages():
    assert private_imports_across_packages() == []


def test_the_private_check_sees_a_crossing(tmp_path, monkeypatch):
    """The check itself: a report module reaching into a search internal is found."""
    fake = tmp_path / "aqsvit"
    (fake / "search").mkdir(parents=True)
    (fake / "report").mkdir()
    for init in ("__init__.py", "search/__init__.py", "report/__init__.py"):
        (fake / init).write_text("")
    (fake / "search" / "_inner.py").write_text("def _helper():\n    pass\n")
    (fake / "search" / "run.py").write_text("from aqsvit.search._inner import _helper\n")
    (fake / "report" / "build.py").write_text("def f():\n    from aqsvit.search._inner import _helper\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert private_imports_across_packages() == [
        "aqsvit/report/build.py:2: aqsvit.report.build imports aqsvit.search._inner._helper"]
