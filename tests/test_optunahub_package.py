"""The OptunaHub package folder: its example runs as written, its entry point exports the samplers,
and its README carries the front matter and sections OptunaHub's registry expects."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

import aqsvit.search

PACKAGE = Path(__file__).resolve().parents[1] / "optunahub" / "aqsvit_stepwise"


def test_example_runs_as_written(tmp_path):
    """Run from an unrelated folder, so only the installed (or PYTHONPATH) aqsvit is importable."""
    root = str(PACKAGE.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, str(PACKAGE / "example.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["GreedySampler", "BeamSampler"]
    for line in lines:
        error, budget = map(float, re.search(r"error ([\d.]+) <= ([\d.]+)", line).groups())
        assert error <= budget
        trials = int(re.search(r"(\d+) trials", line).group(1))
        assert trials < 200, "the sampler did not end the study by itself"
    ratios = [float(re.search(r"([\d.]+)x smaller", line).group(1)) for line in lines]
    assert ratios[1] >= ratios[0], "the beam found a larger model than greedy"


def test_entry_point_exports_the_samplers():
    """What ``optunahub.load_local_module`` imports: the folder's ``__init__.py`` as a module."""
    spec = importlib.util.spec_from_file_location("aqsvit_stepwise", PACKAGE / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.GreedySampler is aqsvit.search.GreedySampler
    assert module.BeamSampler is aqsvit.search.BeamSampler
    assert module.SearchSpace is aqsvit.search.SearchSpace
    assert module.SensitivityStart is aqsvit.search.SensitivityStart


def test_readme_front_matter_and_sections():
    text = (PACKAGE / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert set(meta) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    assert "sampler" in meta["tags"] and meta["license"] == "MIT License"
    import optuna
    assert optuna.__version__ in [str(v) for v in meta["optuna_versions"]]
    headings = re.findall(r"^## (.+)$", body, flags=re.M)
    assert headings[:4] == ["Abstract", "APIs", "Installation", "Example"]
    assert (PACKAGE / "LICENSE").read_text().startswith("MIT License")


# what aqsvit needs besides optuna, numpy and scipy (and optuna's own dependencies): none of it may load
BLOCKED = ("torch", "torchvision", "spikingjelly", "hydra", "omegaconf", "optuna_dashboard", "plotly", "matplotlib",
           "sklearn", "tonic", "PIL", "tensorboard", "psycopg")
BLOCKER = f"""
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked: the OptunaHub package needs optuna, numpy and scipy only")
        return None

sys.meta_path.insert(0, Blocked())
"""


def test_package_imports_and_example_runs_with_optuna_numpy_and_scipy_only(tmp_path):
    """The entry point and the example's searches (both samplers, the sensitivity start's integer
    program included) in a process where torch and every other aqsvit dependency fail to import."""
    root = str(PACKAGE.parents[1])
    code = BLOCKER + f"""
import importlib.util, runpy
spec = importlib.util.spec_from_file_location("aqsvit_stepwise", {str(PACKAGE / "__init__.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
space = module.SearchSpace.from_units({{"a": 100, "b": 10}}, ("uniform",), (8, 4, 2))
module.GreedySampler(space, start=module.SensitivityStart())
runpy.run_path({str(PACKAGE / "example.py")!r}, run_name="__main__")
print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "loaded: []"
    assert [line.split(":")[0] for line in out.stdout.splitlines()[:2]] == ["GreedySampler", "BeamSampler"]
