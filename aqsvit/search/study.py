"""Storage and study helpers: where a study lives, how it survives dead workers.

Storage URLs:
- ``sqlite:///path.db``: one worker on one machine (the default, under ``studies/``);
- ``journal:///path.log`` (or a path ending ``.log``): several workers on one machine;
- ``postgresql://user:pass@host:port/db``: many workers on many machines;
- ``redis://host:port/db``: a journal kept in Redis.

Optuna's advice, confirmed here: SQLite hands one queued trial to two processes, so more than one
worker on SQLite is refused. RDB storages get a heartbeat (a killed worker's trial becomes FAIL and
is retried); the journal storage gets the same by hand: a thread stamps the running trial, and
trials whose stamp is older than the grace period are failed by whoever waits on them.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalRedisBackend
from optuna.trial import TrialState

from aqsvit.errors import AqsvitError

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///studies/aqsvit.db"
HEARTBEAT_ATTR = "aqsvit:heartbeat"
SCHEMES = ("sqlite", "journal", "postgresql", "redis")


def redact(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***`` (also Hydra's ``\\:`` escapes)."""
    return re.sub(r"((?:\\?:)//[^:/@\s]+\\?:)[^@\s]*@", r"\1***@", text)


def _kind(url: str) -> str:
    if url.endswith((".log", ".journal")) and "://" not in url:
        return "journal"
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in SCHEMES:
        raise AqsvitError(f"storage.url: got {redact(url)!r}; allowed: sqlite:///FILE, journal:///FILE, "
                          "postgresql://USER@HOST:PORT/DB, redis://HOST:PORT/DB")
    return scheme


def _file_path(url: str) -> Path:
    if "://" not in url:
        return Path(url)
    rest = url.split(":///", 1)[1] if ":///" in url else url.split("://", 1)[1]
    return Path("/" + rest.lstrip("/")) if rest.startswith("/") else Path(rest)


def check_storage(url: str, workers: int = 1) -> str:
    """Validate ``url`` for ``workers`` processes without creating anything but a missing folder;
    returns the storage kind."""
    kind = _kind(url)
    if kind == "sqlite" and workers > 1:
        raise AqsvitError(f"storage.url: SQLite serves one worker, got workers={workers}; for several "
                          "workers use a journal file (storage=journal) on one machine or PostgreSQL "
                          "(storage=postgres) across machines")
    if kind in ("journal", "sqlite"):
        path = _file_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AqsvitError(f"storage.url: cannot create folder {path.parent} ({exc.strerror})") from exc
        if not _writable(path):
            raise AqsvitError(f"storage.url: {path} is not writable; choose a writable folder")
    return kind


@contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (the class only, only here) around the experimental
    APIs aqsvit relies on by choice: journal and Redis backends, heartbeat retries, metric names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def create_storage(url: str = DEFAULT_URL, workers: int = 1, grace_period: float = 20,
                   max_retry: int = 3, retry_failed: bool = True) -> BaseStorage:
    """Open (and create if needed) the storage behind ``url`` for ``workers`` processes.

    RDB storages beat every ``grace_period / 4`` seconds; a trial silent for ``grace_period``
    is failed and, with ``retry_failed``, retried (at most ``max_retry`` times) by Optuna's
    RetryHeartbeatStaleTrialCallback. Stepwise samplers need no such retry: they propose a failed
    candidate again themselves (a retried copy whose candidate another worker already holds would
    only be turned into a fresh proposal by their claim)."""
    kind = check_storage(url, workers)
    try:
        with quiet_experimental():
            return _open_storage(url, kind, grace_period, max_retry, retry_failed)
    except Exception as exc:  # connection, authentication, missing database, driver
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AqsvitError(f"storage.url: cannot open {redact(url)}: {redact(reason)}") from exc


def _open_storage(url: str, kind: str, grace_period: float, max_retry: int, retry_failed: bool) -> BaseStorage:
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(_file_path(url))))
    if kind == "redis":
        return JournalStorage(JournalRedisBackend(url))
    engine = {"connect_args": {"timeout": 60}} if kind == "sqlite" else {"pool_pre_ping": True}
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=max(1, int(grace_period / 4)),
                      grace_period=max(2, int(grace_period)),
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                      if retry_failed else None)


def _writable(path: Path) -> bool:
    import os
    return os.access(path if path.exists() else path.parent, os.W_OK)


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
