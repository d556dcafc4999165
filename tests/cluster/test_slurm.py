"""``aqsvit search -m workers=2 hydra/launcher=slurm storage=postgres``, as docs/scale-out.md says it,
against the real one-node Slurm cluster of ``scripts/slurm/start.sh``: the workers run as Slurm
jobs (one GPU each by gres, the configured time limit, requeueable), share one study and end with
the single worker's assignment; a job killed by ``scancel`` mid-search loses nothing (its trial
ends FAIL, the other jobs finish the search, no assignment is evaluated twice).

The small search of the fault-injection suite (tests/chaos/test_faults.py): about half a minute
per Slurm search on 2 cores."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from chaos.test_faults import SPACE
from worker_tools import check_finished, final_table, new_pg_database, run_to_end, walker_of

ROOT = Path(__file__).resolve().parents[2]
HOLD = Path(__file__).resolve().with_name("hold")
CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")
WORKERS = 2
TIME_LIMIT_MIN = 10
SEARCH = [f"{k}=[{','.join(map(str, v))}]" if isinstance(v, list) else f"{k}={v}" for k, v in SPACE.items()] \
    + ["grace_period=4", "progress=false", f"checkpoint_dir={Path(CACHE).resolve()}"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def single_worker(reference, tmp_path_factory):
    """The assignment one worker chooses (SQLite, no Slurm)."""
    folder = tmp_path_factory.mktemp("single")
    return run_to_end(*SEARCH, f"storage.url=sqlite:///{folder}/one.db", "search.study_name=one")


def slurm_search(url: str, name: str, sweep: Path, partition: str, workers: int = WORKERS,
                 hold: str | None = None) -> subprocess.Popen:
    """The docs' command (``-m workers=N hydra/launcher=slurm storage=postgres``) with a small
    search and small jobs; the jobs run this python with this checkout first on PYTHONPATH. With
    ``hold`` (``<array task>:<n>:<file>``), that job (``any``: the first to get there) holds its n-th trial
    until killed or signalled (``hold/``)."""
    path = [str(HOLD)] if hold else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [*path, str(ROOT), os.environ.get("PYTHONPATH")])),
           **({"AQSVIT_HOLD": hold} if hold else {})}
    command = [sys.executable, "-m", "aqsvit.cli", "search", "-m", f"workers={workers}", "hydra/launcher=slurm",
               "storage=postgres", f"storage.url={url}", f"search.study_name={name}", *SEARCH,
               f"hydra.sweep.dir={sweep}", f"hydra.launcher.partition={partition}",
               "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
               f"hydra.launcher.timeout_min={TIME_LIMIT_MIN}"]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def job_folders(sweep: Path) -> dict[str, Path]:
    """Each Slurm job's submitit folder (``<array>_<index>``, or ``<job>`` for a lone job), by job id."""
    return {p.parent.name: p.parent for p in sorted((sweep / ".submitit").glob("*/*_submitted.pkl"))}


def job_output(folder: Path) -> str:
    return "".join(p.read_text() for p in sorted(folder.glob("*_log.out")))


def sacct(job_id: str, history: bool = False) -> list[dict[str, str]]:
    """The accounting records of a job array (one per job, steps left out; with ``history`` each
    run of a requeued job too), once every job ended (a job whose result submitit already read
    may still be RUNNING or COMPLETING for a moment)."""
    fields = ("JobID", "State", "AllocTRES", "Timelimit", "Partition", "ExitCode")
    deadline = time.time() + 60
    while True:
        out = subprocess.run(["sacct", "-X", *(["-D"] if history else []), "-n", "-P", "-j", job_id,
                              "-o", ",".join(fields)],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        records = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
        if time.time() > deadline or not any(r["State"] in ("PENDING", "RUNNING", "COMPLETING") for r in records):
            return records
        time.sleep(1)


def check_job_files(sweep: Path) -> None:
    """submitit's pickles (the Hydra task it runs, its result) live only in the job folders, and
    the jobs ran this same python."""
    pickles = [p for p in sweep.rglob("*.pkl") if ".submitit" not in p.relative_to(sweep).parts]
    assert not pickles, f"pickles outside the submitit job folders: {pickles}"
    scripts = list((sweep / ".submitit").rglob("*_submission.sh"))
    assert scripts and all(sys.executable in s.read_text() for s in scripts), "a job runs another python"
    script = scripts[0].read_text()
    for option in ("--gres=gpu:1", f"--time={TIME_LIMIT_MIN}", "--requeue", "--partition="):
        assert option in script, f"{option} missing from the sbatch script:\n{script}"


def wait(proc: subprocess.Popen, timeout: float = 600) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def cancel_all(sweep: Path) -> None:
    """A failed test leaves no job of its own behind."""
    for job in job_folders(sweep):
        subprocess.run(["scancel", job], capture_output=True, timeout=30)


def test_two_slurm_jobs_share_one_study(slurm_cluster, single_worker, reference, tmp_path):
    name = f"slurm-{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / "sweep"
    start = time.time()
    with new_pg_database() as url:
        proc = slurm_search(url, name, sweep, slurm_cluster)
        try:
            out, err = wait(proc)
        except BaseException:
            cancel_all(sweep)
            raise
        assert proc.returncode == 0, err[-3000:]
        jobs = job_folders(sweep)
        assert len(jobs) == WORKERS, jobs
        for job, folder in jobs.items():
            assert final_table(job_output(folder)) == single_worker, f"job {job}:\n{job_output(folder)[-3000:]}"
        records = sacct(next(iter(jobs)).split("_")[0])
        assert sorted(r["JobID"] for r in records) == sorted(jobs), records
        for r in records:
            assert r["State"] == "COMPLETED" and r["Partition"] == slurm_cluster, r
            assert "gres/gpu=1" in r["AllocTRES"], r
            assert r["Timelimit"] == f"00:{TIME_LIMIT_MIN:02d}:00", r
        check_job_files(sweep)
        study = optuna.load_study(study_name=name, storage=url)
        walker = walker_of(reference, "greedy", SPACE["quant.schemes"], SPACE["quant.bits"],
                           SPACE["search.granularity"])
        failed, _ = check_finished(study, walker)
        print(f"slurm: {WORKERS} jobs ({', '.join(jobs)}), trials {len(study.trials)}, FAIL {failed}, "
              f"duplicates 0, final assignment identical, {time.time() - start:.0f} s")


def running_trials(name: str, url: str) -> set[int]:
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:  # not created yet
        return set()
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def test_scancel_loses_nothing(slurm_cluster, single_worker, reference, tmp_path):
    """Of 3 jobs, one is cancelled while it evaluates a trial (the first job to reach its 3rd trial
    holds it until killed, so the cancel always lands inside one, whichever job Slurm started
    first): that trial ends FAIL (no heartbeat for grace_period), the
    other two jobs finish the search, each with the single worker's assignment: 0 duplicates,
    nothing lost, nothing left RUNNING."""
    name = f"scancel-{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / "sweep"
    held_file = tmp_path / "held"
    with new_pg_database() as url:
        proc = slurm_search(url, name, sweep, slurm_cluster, workers=3, hold=f"any:3:{held_file}")
        try:
            deadline = time.time() + 300
            while time.time() < deadline and proc.poll() is None and not held_file.exists():
                time.sleep(0.1)
            assert held_file.exists(), "no job reached its 3rd trial"
            held, task = held_file.read_text().split()
            held = int(held)
            assert held in running_trials(name, url)
            victim = next(job for job in job_folders(sweep) if job.endswith(f"_{task}"))
            survivors = sorted(job for job in job_folders(sweep) if job != victim)
            assert len(survivors) == 2, survivors
            subprocess.run(["scancel", victim], check=True, timeout=30)
            out, err = wait(proc)
        except BaseException:
            cancel_all(sweep)
            raise
        # the launcher may report the cancelled job (submitit: UncompletedJobError) or find the sweep
        # done first, by when it polls: its exit code is submitit's; what counts is below
        records = {r["JobID"]: r for r in sacct(victim.split("_")[0])}
        assert records[victim]["State"].startswith("CANCELLED"), records
        for survivor in survivors:
            assert final_table(job_output(sweep / ".submitit" / survivor)) == single_worker, \
                job_output(sweep / ".submitit" / survivor)[-3000:]
            assert records[survivor]["State"] == "COMPLETED", records
        study = optuna.load_study(study_name=name, storage=url)
        walker = walker_of(reference, "greedy", SPACE["quant.schemes"], SPACE["quant.bits"],
                           SPACE["search.granularity"])
        failed, lost = check_finished(study, walker)
        # the victim still runs for KillWait (5 s: submitit ignores the SIGTERM), then SIGKILL: the trial
        # it holds is then failed by the survivor once its heartbeat is grace_period old
        assert study.trials[held].state == TrialState.FAIL, study.trials[held]
        print(f"slurm scancel {victim} holding trial {held}: trials {len(study.trials)}, FAIL {failed} "
              f"({lost} not needed again), duplicates 0, final assignment identical")


def test_time_limit_requeues_and_the_requeued_job_finishes(slurm_cluster, single_worker, reference, tmp_path):
    """One worker's job gets Slurm's time-limit warning (USR2, what ``--signal=USR2@<signal_delay_s>``
    sends before ``--time`` runs out; sent here with ``scancel --signal`` while the job holds its 2nd
    trial, so that the warning always lands inside a trial, as submitit's own tests send it):
    submitit requeues it (``scontrol requeue``, max_num_timeout), the trial it held ends FAIL, and
    the requeued job (which holds nothing) resumes the study and finishes the search."""
    name = f"requeue-{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / "sweep"
    held_file = tmp_path / "held"
    with new_pg_database() as url:
        proc = slurm_search(url, name, sweep, slurm_cluster, workers=1, hold=f"any:2:{held_file}")
        try:
            deadline = time.time() + 300
            while time.time() < deadline and proc.poll() is None and not held_file.exists():
                time.sleep(0.1)
            assert held_file.exists(), "the job never reached its 2nd trial"
            held = int(held_file.read_text().split()[0])
            assert held in running_trials(name, url)
            (job,) = job_folders(sweep)
            subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
            # Slurm holds a requeued job for about 2 minutes (its BeginTime); the test lets it start now
            while time.time() < deadline and proc.poll() is None:
                state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True,
                                       text=True, timeout=30).stdout.split()
                if state[:2] == ["PENDING", "BeginTime"]:
                    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
                    break
                time.sleep(0.5)
            out, err = wait(proc)
        except BaseException:
            cancel_all(sweep)
            raise
        assert proc.returncode == 0, (out + err)[-3000:]
        log = job_output(sweep / ".submitit" / job)
        assert "timed-out" in log and "Requeued job" in log, log[-3000:]
        assert final_table(log) == single_worker, log[-3000:]
        runs = sacct(job, history=True)
        assert [r["State"] for r in runs] == ["REQUEUED", "COMPLETED"], runs
        study = optuna.load_study(study_name=name, storage=url)
        walker = walker_of(reference, "greedy", SPACE["quant.schemes"], SPACE["quant.bits"],
                           SPACE["search.granularity"])
        failed, lost = check_finished(study, walker)
        assert study.trials[held].state == TrialState.FAIL, study.trials[held]
        print(f"slurm requeue {job}: trials {len(study.trials)}, FAIL {failed} ({lost} not needed again), "
              "duplicates 0, final assignment identical")
