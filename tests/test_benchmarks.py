"""The comparison benchmark still runs end to end (its --quick numbers are not the benchmark)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_compare_quick_writes_its_table_and_figures(reference, tmp_path):
    out = subprocess.run([sys.executable, "benchmarks/compare.py", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "compare.md").read_text()
    for method in ("| greedy", "| TPE ", "| TPE + drift pruner", "| one width for all"):
        assert method in text
    greedy = next(line for line in text.splitlines() if line.startswith("| greedy"))
    cells = [c.strip() for c in greedy.strip("|").split("|")]
    assert cells[2] == "1/1" and float(cells[3]) > 1  # greedy found a feasible compressed assignment
    assert (tmp_path / "compare.html").stat().st_size > 0 and (tmp_path / "compare_spikformer_digits.png").exists()
    # the runs are kept: a second call (e.g. after an interruption) reuses them and writes the same table
    kept = list((tmp_path / "compare_runs").glob("spikformer_digits-*seed0.json"))
    assert len(kept) == 1
    before = json.loads(kept[0].read_text())["methods"]
    again = subprocess.run([sys.executable, "benchmarks/compare.py", "--quick", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "compare.md").read_text() == text
    # a method asked for later is measured alone and added next to the kept runs
    more = subprocess.run([sys.executable, "benchmarks/compare.py", "--quick", "--methods", "greedy, one-width start",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert more.returncode == 0, more.stderr
    after = json.loads(kept[0].read_text())["methods"]
    assert set(after) == {*before, "greedy, one-width start"} and all(after[m] == before[m] for m in before)
    assert "| greedy, one-width start" in (tmp_path / "compare.md").read_text()
    # --assemble tables what is stored and computes nothing: the same runs stored for a full run's
    # config as seeds 0 and 1 give their rows; a seed with nothing stored is an error, not a run
    full = tmp_path / "full"
    (full / "compare_runs").mkdir(parents=True)
    for stored in (tmp_path / "compare_runs").glob("spikformer_digits-*.json"):
        data = json.loads(stored.read_text())
        data["config"]["quick"] = False
        for seed in ((0, 1) if "seed" in data["config"] else (None,)):
            name = stored.name if seed is None else stored.name.replace("seed0", f"seed{seed}")
            if seed is not None:
                data["config"]["seed"] = seed
            (full / "compare_runs" / name).write_text(json.dumps(data))
    command = [sys.executable, "benchmarks/compare.py", "--models", "spikformer_digits", "--budget", "30",
               "--assemble", "--out", str(full), "--seeds"]
    assembled = subprocess.run([*command, "0", "1"], capture_output=True, text=True, timeout=600)
    assert assembled.returncode == 0, assembled.stderr
    table = (full / "compare.md").read_text()
    assert "--assemble" in table
    for method in after:
        assert f"| {method}" in table
    rows = next(line for line in table.splitlines() if line.startswith("| greedy, one-width start"))
    assert rows.split("|")[2].strip() == "2"  # both seeds
    missing = subprocess.run([*command, "0", "2"], capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "no stored runs" in missing.stderr
    assert not list((full / "compare_runs").glob("*seed2.json"))


@pytest.mark.slow
def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.sh --device cpu: the CUDA tests (skipped here) and benchmarks/scale.py
    on a tiny model with one worker and with two sharing the device (its figures are not the
    benchmark's); each run writes its own row and a GPU row already in the file stays."""
    gpu_row, gpu_command = "| GPU H100 | Spikformer 4-384 at 32x32 | 9.31M | 10000 |", "- GPU: `benchmarks/scale.py --device cuda`"
    (tmp_path / "scale.md").write_text(f"# old\n\n{gpu_command}\n- CPU: `old`\n\n| device |\n|---|\n{gpu_row}\n| CPU old |\n")
    out = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "skipped" in out.stdout and "needs CUDA" in out.stdout  # the CUDA tests were found and skipped
    text = (tmp_path / "scale.md").read_text()
    assert "--depths 1" in text and "- CPU, 2 workers: `" in text  # the commands that made the rows
    assert gpu_row in text and gpu_command in text and "CPU old" not in text and "`old`" not in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| CPU")]
    assert sorted(int(cells[8]) for cells in rows) == [1, 2]
    for cells in rows:
        assert "(reduced)" in cells[1] and float(cells[5]) > 0 and float(cells[6]) > 0
        assert int(cells[10]) >= 1 and int(cells[11]) >= 32 and 0 < float(cells[12].rstrip("%")) <= 100


def test_compare_runs_of_two_processes_on_one_seed_file_are_both_kept(tmp_path, monkeypatch):
    """A process that stores its methods keeps those another process stored after it started."""
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parents[1] / "benchmarks"))
    import compare

    path, config = tmp_path / "m-75s-seed0.json", {"reference": "r", "seed": 0}

    def other_process_stores_meanwhile(missing):
        compare.cached(path, config, ["TPE"], lambda _: {"TPE": {1.0: [compare.Run("TPE", 0, [(1.0, 9.0, 0.5)])]}})
        return {"greedy": {1.0: [compare.Run("greedy", 0, [(2.0, 14.0, 0.2)])]}}

    runs = compare.cached(path, config, ["greedy"], other_process_stores_meanwhile)
    assert [r.method for r in runs[1.0]] == ["greedy"]
    assert set(compare.stored(path, config)) == {"greedy", "TPE"}
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.slow
def test_front_benchmark_writes_its_table_checks_and_points(reference, tmp_path):
    """benchmarks/front.py on two deltas and a tenth of the peers' budget: every method's row, the
    four checks per seed, and the raw points it judged them by (a front's points within its deltas)."""
    out = tmp_path / "front.md"
    result = subprocess.run([sys.executable, "benchmarks/front.py", "--deltas", "1", "3", "--peer-factor", "0.1",
                             "--seeds", "0", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for method in ("front search", "one search per delta", "one search, delta 1", "re-solve, no walk", "NSGA-II",
                   "TPE", "GPSampler"):
        assert f"| {method} " in text, method
    checks = [line for line in text.splitlines() if line.startswith("- seed 0: ")]
    assert [c.split()[3] for c in checks] == ["hypervolume", "at" if "at every" in checks[1] else "smaller", "wall",
                                              "cost"], checks
    runs = json.loads(out.with_suffix(".json").read_text())["spikformer_digits"]["runs"]
    ours = next(r for r in runs if r["method"] == "front search")
    assert ours["points"] and ours["cost"] > 0 and min(drop for _, drop, _ in ours["points"]) <= 1.0


def test_study_scale_fills_times_and_tables_every_storage(tmp_path):
    """benchmarks/study_scale.py at a toy size: a row per storage and worker count, PostgreSQL in a
    new database that is gone afterwards."""
    import sqlalchemy
    from worker_tools import PG_URL, need_pg

    need_pg()
    result = subprocess.run([sys.executable, "benchmarks/study_scale.py", "--sizes", "5", "--workers", "1", "2",
                             "--trials", "2", "--repeats", "2", "--pg", PG_URL, "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line for line in (tmp_path / "study_scale.md").read_text().splitlines() if line.startswith("| ")][1:]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [(c[0], c[1]) for c in cells] == [("sqlite", "1"), ("journal", "1"), ("journal", "2"),
                                             ("postgresql", "1"), ("postgresql", "2")]
    # every worker timed its 2 trials in each of the 2 rounds, pooled in the row
    assert all(int(c[3]) == 2 * 2 * int(c[1]) and float(c[4]) > 0 for c in cells)
    engine = sqlalchemy.create_engine(PG_URL)
    with engine.connect() as connection:
        left = connection.exec_driver_sql("SELECT count(*) FROM pg_database WHERE starts_with(datname, 'aqsvit_scale')")
        assert left.scalar() == 0
    engine.dispose()
