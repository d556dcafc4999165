"""The console script: one line and exit code 2 for bad input, tables for good input."""
from __future__ import annotations

import subprocess
import sys

import pytest

AQSVIT = [sys.executable, "-m", "aqsvit.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AQSVIT, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,field", [
    (("nonsense",), "command: got 'nonsense'"),
    (("baseline", "model.name=vit"), "model.name: got 'vit'"),
    (("baseline", "quant.bits=[9]"), "bits: got 9; allowed: integers 2..8"),
])
def test_bad_input_is_one_line_and_exit_2(args, field, reference):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(reference):
    result = run("baseline", "model.name=vit", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_baseline_prints_the_table(reference):
    result = run("baseline", "quant.bits=[8,2]", "quant.schemes=[uniform]")
    assert result.returncode == 0, result.stderr
    assert "| uniform | 8" in result.stdout and "| uniform | 2" in result.stdout
