"""Make one Slurm job hold a trial until it is killed, so that ``scancel`` always hits a trial.

Python imports this file at start-up when its folder is on ``PYTHONPATH`` (the scancel and requeue
tests put it there for the jobs). Armed by ``AQSVIT_HOLD=<array task id>:<n>:<file>``: in the job of
that array task (``any``: every job), the ``n``-th ``Study.ask`` writes the asked trial's number and
the job's array task id to ``<file>`` and then sleeps until the job is killed or signalled (the
trial's heartbeat thread goes on beating); with ``any``, only the first job to get there holds. Once
``<file>`` exists it arms nothing, so a requeued job runs freely. Unarmed it does
nothing; nothing in the product knows of it, as with ``tests/chaos/fault_shim.py``.
"""
from __future__ import annotations

import os


def _arm(task: str, n: int, file: str) -> None:
    import functools
    import time

    import optuna

    real_ask = optuna.Study.ask
    asked = 0

    @functools.wraps(real_ask)
    def ask(self, *args, **kwargs):
        nonlocal asked
        trial = real_ask(self, *args, **kwargs)
        asked += 1
        if asked == n:
            mine = f"{file}.{os.getpid()}"
            with open(mine, "w") as out:
                out.write(f"{trial.number} {os.environ.get('SLURM_ARRAY_TASK_ID', '')}")
            try:
                os.link(mine, file)  # atomic: of the armed jobs, the first to get here holds; the others run on
            except FileExistsError:
                return trial
            finally:
                os.unlink(mine)
            while True:
                time.sleep(1)
        return trial

    optuna.Study.ask = ask


_hold = os.environ.get("AQSVIT_HOLD")
if _hold:
    _task, _n, _file = _hold.split(":", 2)
    if _task in ("any", os.environ.get("SLURM_ARRAY_TASK_ID")) and not os.path.exists(_file):
        _arm(_task, int(_n), _file)
