"""How a study survives dead workers: aqsvit's own heartbeat stamp on any storage, and the
recovery of trials whose worker died (the storages themselves: :mod:`aqsvit.search.storages`).

RDB storages get Optuna's heartbeat too (while the objective runs); the journal storages get the
same by hand: a thread stamps the running trial, and trials whose stamp is older than the grace
period are failed by whoever waits on them. A worker that was only slow may so find its trial
failed under it; :func:`optimize` drops that trial and goes on.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from aqsvit.search.vocabulary import HEARTBEAT_ATTR

log = logging.getLogger(__name__)


@contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (the class only, only here) around the experimental
    APIs aqsvit relies on by choice: journal and Redis backends, heartbeat retries, metric names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def keep_alive(study: optuna.Study, trial_id: int) -> None:
    """Stamp ``trial_id`` as alive, on any storage.

    Optuna's own RDB heartbeat only beats while the objective runs; a worker waiting inside its
    sampler (in ``study.ask``) has no heartbeat there, so every storage uses this stamp."""
    study._storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())


def recover_stale(study: optuna.Study, grace_period: float = 20.0) -> None:
    """Fail RUNNING trials of dead workers so their candidates are proposed again.

    Works from :func:`keep_alive` stamps, so it also catches a worker killed while it waited in
    its sampler, which Optuna's RDB heartbeat (evaluation only) never sees."""
    storage = study._storage
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        stamp = t.system_attrs.get(HEARTBEAT_ATTR)
        started = t.datetime_start.timestamp() if t.datetime_start else now
        if now - (stamp if stamp is not None else started) > grace_period:
            try:
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                log.warning("trial %d had no heartbeat for %.0f s: marked FAIL", t.number, grace_period)
            except Exception:  # another worker failed it first, or it just finished
                pass


@contextmanager
def heartbeat(study: optuna.Study, trial_id: int, interval: float = 5.0) -> Iterator[None]:
    """Stamp a trial every ``interval`` seconds while it runs (see :func:`keep_alive`)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                keep_alive(study, trial_id)
            except Exception:  # the trial finished meanwhile
                return
            stop.wait(interval)

    thread = threading.Thread(target=beat, daemon=True, name="aqsvit-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def wait_hook(grace_period: float = 20.0):
    """The ``on_wait`` for stepwise samplers: stay alive, and fail trials of dead workers."""
    def on_wait(study: optuna.Study, trial_id: int) -> None:
        keep_alive(study, trial_id)
        recover_stale(study, grace_period)
    return on_wait


class TrialTakenOver(BaseException):
    """Raised out of an objective whose trial another worker finished meanwhile (took this worker
    for dead). A BaseException, so that it leaves ``Study.optimize`` before Optuna tells the trial:
    Optuna tells only RUNNING trials and would end the worker there (optuna#5470)."""


def optimize(study: optuna.Study, objective: Callable[[optuna.Trial], object], n_trials: int | None = None,
             callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (), interval: float = 5.0) -> None:
    """``study.optimize`` for one of several workers: each trial is stamped alive every ``interval``
    seconds while the objective runs (:func:`heartbeat`), and a trial that another worker finished
    meanwhile (a worker slower than the grace period looks dead) is dropped with a warning, this
    worker going on with its next trial. Under Optuna's own loop it would end the worker: a write
    on the trial raises UpdateFinishedTrialError, and telling it ValueError or AssertionError
    (optuna#5470). ``n_trials`` counts the dropped trials too."""
    started = 0

    def run_trial(trial: optuna.Trial) -> object:
        nonlocal started
        started += 1
        try:
            with heartbeat(study, trial._trial_id, interval):
                return objective(trial)
        finally:
            if study._storage.get_trial(trial._trial_id).state.is_finished():
                raise TrialTakenOver(f"trial {trial.number}")

    while n_trials is None or started < n_trials:
        try:
            study.optimize(run_trial, n_trials=None if n_trials is None else n_trials - started,
                           callbacks=list(callbacks), gc_after_trial=False)
            return
        except BaseException as exc:
            if not _finished_elsewhere(exc):
                raise
            log.warning("a trial of this worker was finished by another worker that took it for dead (%s); "
                        "its evaluation is dropped", exc)


def _finished_elsewhere(exc: BaseException | None) -> bool:
    """Whether ``exc`` comes of a trial that another worker finished: TrialTakenOver, or an
    UpdateFinishedTrialError from Optuna's ask or tell (which lost the same race after the
    objective; telling, Optuna may end in an AssertionError raised while handling it)."""
    while exc is not None:
        if isinstance(exc, (TrialTakenOver, UpdateFinishedTrialError)):
            return True
        exc = exc.__context__
    return False
