"""Run one aqsvit command with a fault point armed: SIGKILL this process the N-th time it passes it.

    AQSVIT_FAULT=<point>:<N> python tests/chaos/fault_shim.py search key=value ...

The points wrap Optuna's and aqsvit's own calls from outside (nothing in the product knows of them):

- ``ask``: ``Study.ask`` has returned a trial (the sampler's claim written, nothing evaluated);
- ``param``: a stepwise trial's claimed parameters were written in one batch (``set_trial_params``),
  the suggest that claimed them not yet returned, the objective not yet started;
- ``before_state`` / ``after_state``: a trial's final state write (COMPLETE or PRUNED) is about to
  be made / has been made (``set_trial_state_values``), nothing after it;
- ``reference_partial``: half of the FP reference cache file is written (its temp file);
- ``reference_rename``: the FP reference cache's temp file is whole, not yet renamed into place.

Before the kill, the point and the trial it hit go to the JSON file ``AQSVIT_FAULT_LOG`` (if set),
so the test can follow that trial's fate.
"""
from __future__ import annotations

import functools
import io
import json
import os
import signal
import sys
from pathlib import Path

POINTS = ("ask", "param", "before_state", "after_state", "reference_partial", "reference_rename")
REFERENCE_PREFIX = "fp-reference-"


def arm(point: str, n: int) -> None:
    """Patch the calls behind ``point`` so that its ``n``-th pass kills this process."""
    import optuna
    import torch
    from optuna.storages import JournalStorage
    from optuna.storages._cached_storage import _CachedStorage
    from optuna.trial import TrialState

    passes = 0

    def reached(name: str, trial_id: int | None = None) -> None:
        nonlocal passes
        if name != point:
            return
        passes += 1
        if passes == n:
            log = os.environ.get("AQSVIT_FAULT_LOG")
            if log:
                Path(log).write_text(json.dumps({"point": point, "pass": n, "trial_id": trial_id}))
            os.kill(os.getpid(), signal.SIGKILL)

    real_ask = optuna.Study.ask

    @functools.wraps(real_ask)
    def ask(self, *args, **kwargs):
        trial = real_ask(self, *args, **kwargs)
        reached("ask", trial._trial_id)
        return trial

    optuna.Study.ask = ask

    # the storages the workers use: RDB behind Optuna's cache, and the journal file
    for cls in (_CachedStorage, JournalStorage):
        real_state = cls.set_trial_state_values

        @functools.wraps(real_state)
        def set_trial_state_values(self, trial_id, state, *args, _real=real_state, **kwargs):
            final = state in (TrialState.COMPLETE, TrialState.PRUNED)
            if final:
                reached("before_state", trial_id)
            result = _real(self, trial_id, state, *args, **kwargs)
            if final:
                reached("after_state", trial_id)
            return result

        cls.set_trial_state_values = set_trial_state_values

    from aqsvit.search.stepwise import base as stepwise

    real_params = stepwise.set_trial_params

    @functools.wraps(real_params)
    def set_trial_params(storage, trial_id, *args, **kwargs):
        real_params(storage, trial_id, *args, **kwargs)
        reached("param", trial_id)

    stepwise.set_trial_params = set_trial_params

    real_save, real_replace = torch.save, Path.replace

    @functools.wraps(real_save)
    def save(obj, f, *args, **kwargs):
        if point == "reference_partial" and isinstance(f, (str, os.PathLike)) \
                and Path(f).name.startswith(REFERENCE_PREFIX):
            whole = io.BytesIO()
            real_save(obj, whole, *args, **kwargs)
            with open(f, "wb") as out:
                out.write(whole.getvalue()[: len(whole.getvalue()) // 2])
            reached("reference_partial")
        return real_save(obj, f, *args, **kwargs)

    def replace(self, target):
        if Path(target).name.startswith(REFERENCE_PREFIX):
            reached("reference_rename")
        return real_replace(self, target)

    torch.save, Path.replace = save, replace


def main() -> None:
    fault = os.environ.get("AQSVIT_FAULT")
    if fault:
        point, _, n = fault.partition(":")
        if point not in POINTS or not n.isdigit() or int(n) < 1:
            sys.exit(f"AQSVIT_FAULT: got {fault!r}; allowed: <point>:<N> with point one of {', '.join(POINTS)}, N >= 1")
        arm(point, int(n))
    from aqsvit.cli import main as aqsvit_main
    aqsvit_main(sys.argv[1:])


if __name__ == "__main__":
    main()
