"""The wheel works on its own: built from the package files, installed (not editable) into a fresh
virtual environment, ``aqsvit search`` runs in an empty folder with nothing from the source tree.

What it guards: the Hydra config (``aqsvit/conf``) and anything else the commands read must be
package data; a file that only the checkout has breaks ``pip install aqsvit`` but no editable test.

The environment is a clean ``python -m venv`` with ``pip install torch==2.13.0 <wheel>``: every
dependency comes from the wheel's metadata, as for a user (torch pinned in the same command, as in
the Makefile, so pip takes the CPU build). Measured on the 2-core machine: the install 65 s (the
wheels come from pip's cache), the search 80 s of CPU (4 training epochs of the default digits
model reach 91%; 2 stay at chance and are refused; one width for the whole network). A
``--system-site-packages`` venv would save the install but would see whatever the base interpreter
has, not what a user's fresh environment has.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what a source distribution holds (the Dockerfile copies the same): the build sees no other file
SOURCES = ("pyproject.toml", "README.md", "aqsvit")
SEARCH = ("search", "train.epochs=4", "search.granularity=network", "quant.schemes=[uniform]", "quant.bits=[8,4]",
          "progress=false")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_installed_wheel_searches_in_an_empty_folder(tmp_path):
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (ROOT / name).is_dir() else {}))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)], tmp_path, env, 600)
    (wheel,) = dist.glob("aqsvit-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 300)
    python, aqsvit = venv / "bin" / "python", venv / "bin" / "aqsvit"
    _run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", str(wheel)], tmp_path, env, 1200)

    work = tmp_path / "work"  # empty: no conf/, no checkout, no cached checkpoint
    work.mkdir()
    where = _run([str(python), "-c", "import aqsvit; print(aqsvit.__file__)"], work, env, 120).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed package, not the checkout

    result = _run([str(aqsvit), *SEARCH], work, env, 1200)
    assert "| network | uniform |" in result.stdout, result.stdout  # the chosen assignment's table
    assert "chosen" in result.stdout and "fp32" in result.stdout
    print(f"wheel built, installed and searched in {time.perf_counter() - started:.0f} s")
    shutil.rmtree(venv)  # ~2 GB; pytest keeps the last runs' tmp folders (a failed one keeps its venv)
