"""How a study survives dead workers: aqsvit's own heartbeat stamp on any storage, and the
recovery of trials whose worker died (the storages themselves: :mod:`aqsvit.search.storages`).

RDB storages get Optuna's heartbeat too (while the objective runs); the journal storages get the
same by hand: a thread stamps the running trial, and trials whose stamp is older than the grace
period are failed by whoever waits on them. A worker that was only slow may so find its trial
failed under it; :func:`optimize` drops that trial and goes on.
"""
from __future__ import annotations

import _thread
import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, FrameType

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


# where a Ctrl-C is held (see interrupts_inside): the storages, and aqsvit's own reads and writes
# of them, which change Optuna's cache and the database together
STORAGE_MODULES = ("optuna.storages", "sqlalchemy", "psycopg", "psycopg2", "redis", "aqsvit.search.rdb_storage",
                   "aqsvit.search.trial_reads", "aqsvit.search.trial_writes")
_RETRY_S = 0.05


@contextmanager
def interrupts_inside(objective_code: CodeType) -> Iterator[None]:
    """Let a Ctrl-C strike Optuna's loop only inside the objective (whose code is
    ``objective_code``) and never inside storage code; one that arrives elsewhere is held and
    raised again every 50 ms until it lands there. Python raises KeyboardInterrupt at any
    bytecode: inside SQLAlchemy's commit or session close it leaves the session half-done and
    Optuna's tell then fails (SQLite: "database is locked"); between Optuna's ask and its try
    (a slow sampler's ask too) nothing tells the trial. Either way the trial would stay RUNNING.
    Inside the objective Optuna tells it FAIL and re-raises. Only where Python's own Ctrl-C
    handler is installed (a user's handler is kept), and only in the main thread."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def hold() -> None:
        timer = threading.Timer(_RETRY_S, _thread.interrupt_main, (signal.SIGINT,))
        timer.daemon = True
        timer.start()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith(STORAGE_MODULES):
                return hold()
            if frame.f_code is objective_code:
                raise KeyboardInterrupt
            if module.startswith("optuna.study"):  # Optuna's loop outside the objective
                return hold()
            frame = frame.f_back
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block and raise it when the block ends: for a few
    storage writes that must not stop half-way, such as a trial created and then written whole
    outside Optuna's loop (which would stay RUNNING). Only in the main thread, and only where
    Python's own Ctrl-C handler is installed (a user's handler is kept)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


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
    (optuna#5470). ``n_trials`` counts the dropped trials too.

    A Ctrl-C ends it with this worker's trial failed by Optuna: it strikes only inside the
    objective (:func:`interrupts_inside`)."""
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
            with interrupts_inside(run_trial.__code__):
                study.optimize(run_trial, n_trials=None if n_trials is None else n_trials - started,
                               callbacks=list(callbacks), gc_after_trial=False)
            return
        except BaseException as exc:
            if not _caused_by(exc, (TrialTakenOver, UpdateFinishedTrialError)):
                raise
            log.warning("a trial of this worker was finished by another worker that took it for dead (%s); "
                        "its evaluation is dropped", exc)


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or an exception it was raised while handling is one of ``kinds``."""
    while exc is not None:
        if isinstance(exc, kinds):
            return True
        exc = exc.__context__
    return False
