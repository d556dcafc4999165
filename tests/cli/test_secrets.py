"""A storage password never reaches output, logs, Hydra's saved config, reports or the study."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest

from worker_tools import PG_URL, need_pg

SECRET = "Pw-" + uuid.uuid4().hex[:10]


def with_password(url: str) -> str:
    # PostgreSQL here trusts local connections, so any password is accepted: the test still sees
    # every place the URL travels through.
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user.split(':')[0]}:{SECRET}@{host}"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aqsvit.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_password_appears_nowhere(tmp_path, reference):
    need_pg()
    url = with_password(PG_URL)
    name = f"secret-{uuid.uuid4().hex[:8]}"
    # a small space (uniform 8/4/2 bits per layer): where the URL travels, not the search, is tested
    small = ["quant.schemes=[uniform]", "quant.bits=[8,4,2]"]
    common = ["progress=false", f"search.study_name={name}", f"report.dir={tmp_path}/reports", *small]
    runs = [
        cli("search", f"storage.url={url}", f"hydra.run.dir={tmp_path}/run1", *common),
        cli("search", "storage=postgres", f"hydra.run.dir={tmp_path}/run2", *common, env={"AQSVIT_STORAGE": url}),
        cli("report", f"storage.url={url}", f"hydra.run.dir={tmp_path}/run3", *common),
        cli("search", "-m", "workers=2", f"storage.url={url}", f"hydra.sweep.dir={tmp_path}/sweep",
            f"search.study_name={name}-mr", "progress=false", *small),
        cli("search", "storage.url=" + url.replace("127.0.0.1", "127.0.0.1:1").replace(":5432", ""),
            f"hydra.run.dir={tmp_path}/run4", *common),  # a connection error quotes the URL
    ]
    for r in runs[:4]:
        assert r.returncode == 0, r.stderr
    assert runs[4].returncode == 2 and "***" in runs[4].stderr
    for r in runs:
        assert SECRET not in r.stdout + r.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in written) and any(p.name == "multirun.yaml" for p in written)
    assert any(p.suffix == ".log" for p in written) and any(p.name == "report.html" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), f"password written to {path}"
    study = optuna.load_study(study_name=name, storage=PG_URL)
    assert SECRET not in repr(study.user_attrs) + repr(study.system_attrs if hasattr(study, "system_attrs") else "")
    assert all(SECRET not in repr(t.user_attrs) + repr(t.system_attrs) for t in study.trials)
    for path in Path("studies/checkpoints").glob("*"):
        assert SECRET.encode() not in path.read_bytes()
