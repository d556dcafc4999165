"""Several worker processes on one study, on a journal file and on the real PostgreSQL."""
from __future__ import annotations

import re
import subprocess
import sys
import uuid
from contextlib import nullcontext

import optuna
import pytest

from worker_tools import (PG_URL, check_unique, final_table, load_study, need_pg, new_pg_database, run_to_end,
                          search_process, study_url)

# a small space (uniform 8/4/2 bits per layer, every layer still a unit): sharing, not the search, is tested
BASE = ["search.calib_images=64", "quant.schemes=[uniform]", "quant.bits=[8,4,2]"]


def worker(*args: str) -> subprocess.Popen:
    return search_process(*BASE, *args)


@pytest.fixture(scope="module")
def single_worker_result(reference, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('single')}/one.db"
    return run_to_end(*BASE, f"storage.url={url}", "search.study_name=one", timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["journal", "postgres"])
def test_three_workers_share_one_study(backend, single_worker_result, tmp_path):
    """Started at once on a new study: on PostgreSQL a new database, whose schema all three create."""
    name = f"w3-{uuid.uuid4().hex[:8]}"
    with new_pg_database() if backend == "postgres" else nullcontext(study_url(backend, tmp_path)) as url:
        procs = [worker(f"storage.url={url}", f"search.study_name={name}", "workers=3") for _ in range(3)]
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err
            assert final_table(out) == single_worker_result
        check_unique(load_study(name, url))


def test_more_than_one_worker_on_sqlite_is_refused(tmp_path, reference):
    proc = worker(f"storage.url=sqlite:///{tmp_path}/x.db", "workers=2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "SQLite serves one worker" in lines[0] and "journal" in lines[0] and "PostgreSQL" in lines[0]
    assert not (tmp_path / "x.db").exists()


def test_unreachable_database_is_one_line_without_password(reference):
    proc = worker("storage.url=postgresql://alice:s3cret@127.0.0.1:1/nodb")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("aqsvit: error: storage.url: cannot open")
    assert "s3cret" not in err + out


@pytest.mark.slow
def test_hydra_multirun_two_workers_on_postgres(single_worker_result):
    need_pg()
    name = f"mr-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", "-m", "workers=2", "storage=postgres",
                           f"storage.url={PG_URL}", f"search.study_name={name}", "progress=false", *BASE],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    tables = re.findall(r"(\| unit .*?)\n\n", proc.stdout, re.S)
    assert len(tables) == 2 and all(t == single_worker_result for t in tables)
    check_unique(optuna.load_study(study_name=name, storage=PG_URL))
