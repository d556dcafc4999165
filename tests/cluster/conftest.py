"""The real one-node Slurm cluster (``scripts/slurm/start.sh``), started once per session by the
tests that need it, as ``.ci/run`` relies on PostgreSQL. Skipped only where it cannot be built
(not root, no apt-get and no Slurm); in CI (``CI=true``) that is a failure instead."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

START = Path(__file__).resolve().parents[2] / "scripts" / "slurm" / "start.sh"


def _cannot(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Slurm test cluster is required in CI: {reason}")
    pytest.skip(f"no Slurm test cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Start (or find running) the test cluster; return its partition."""
    if os.geteuid() != 0:
        _cannot("scripts/slurm/start.sh needs root (apt-get, munge key, slurmctld/slurmd)")
    if not (shutil.which("apt-get") or shutil.which("slurmctld") or Path("/usr/sbin/slurmctld").exists()):
        _cannot("no apt-get to install slurm-wlm and munge")
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 77:
        _cannot(proc.stderr.strip())
    assert proc.returncode == 0, f"scripts/slurm/start.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return os.environ.get("AQSVIT_SLURM_PARTITION", "debug")
