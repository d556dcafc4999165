"""The examples in the public docstrings run as written (``.. code-block:: python`` blocks)."""
from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import aqsvit.search
from aqsvit.registry import Registry

PUBLIC = [getattr(aqsvit.search, name) for name in aqsvit.search.__all__] + [Registry]
FENCE = ".. code-block:: python"


def examples(obj) -> list[str]:
    """The code blocks of ``obj``'s docstring: the indented lines after each fence."""
    lines, blocks = inspect.getdoc(obj).splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() != FENCE:
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        for body in lines[i + 1:]:
            if body.strip() and len(body) - len(body.lstrip()) <= indent:
                break
            block.append(body)
        blocks.append(textwrap.dedent("\n".join(block)))
    return blocks


WITH_EXAMPLES = [obj for obj in PUBLIC if inspect.getdoc(obj) and FENCE in inspect.getdoc(obj)]


def test_the_samplers_and_the_registry_show_an_example():
    assert {o.__name__ for o in WITH_EXAMPLES} >= {"GreedySampler", "BeamSampler", "Registry"}


@pytest.mark.parametrize("obj", WITH_EXAMPLES, ids=lambda o: o.__name__)
def test_docstring_example_runs(obj):
    # as a user runs it: a fresh interpreter, the block as a script
    printed = "".join(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
                      for code in examples(obj)).strip()
    assert printed, "an example prints its result"
    if obj.__name__.endswith("Sampler"):  # the result: one (scheme, bits) per unit, below 8 bits somewhere
        result = eval(printed.splitlines()[-1])
        assert set(result) == {"a", "b"} and any(bits < 8 for _, bits in result.values()), printed
