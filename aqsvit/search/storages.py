"""The storage plug point (``storage.url``): a registry of URL schemes, each with the Optuna
storage it opens and who may share it.

- ``sqlite:///path.db``: one worker on one machine (the default, under ``studies/``);
- ``journal:///path.log`` (or a bare path ending ``.log``/``.journal``): several workers on one machine;
- ``postgresql://user:pass@host:port/db``: many workers on many machines;
- ``redis://host:port/db``: a journal kept in Redis, many workers on many machines.

Optuna's advice, confirmed here: SQLite hands one queued trial to two processes, so more than one
worker on SQLite is refused. RDB storages get a heartbeat (a killed worker's trial becomes FAIL and
is retried); every storage also gets aqsvit's own stamp (:mod:`aqsvit.search.study`).

Adding a scheme (from any module listed in ``plugins``)::

    @register_storage("mysql", example="mysql://USER@HOST:PORT/DB", shared=True)
    def open_mysql(url: str, options: StorageOptions) -> BaseStorage:
        return RDBStorage(url, heartbeat_interval=options.heartbeat_interval, grace_period=options.grace_seconds)
"""
from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

from aqsvit.errors import AqsvitError
from aqsvit.registry import Registry
from aqsvit.search.rdb_storage import CoreRDBStorage, OwnedTrialsCache
from aqsvit.search.study import quiet_experimental
from aqsvit.search.trial_reads import IndexedJournalStorage

DEFAULT_URL = "sqlite:///studies/aqsvit.db"
SCHEMA_TRIES = 8  # RDB storages: opens before losing the schema creation race to other first starts is an error
ALIASES = {"postgres": "postgresql"}
STORAGES: Registry[Callable[..., BaseStorage]] = Registry("storage.url")


@dataclass(frozen=True)
class StorageOptions:
    """What an opener may use besides the URL: the heartbeat and retry policy of RDB storages."""

    grace_period: float = 20
    max_retry: int = 3
    retry_failed: bool = True

    @property
    def heartbeat_interval(self) -> int:
        return max(1, int(self.grace_period / 4))

    @property
    def grace_seconds(self) -> int:
        return max(2, int(self.grace_period))


def register_storage(scheme: str, *, example: str, title: str = "", shared: bool = False, file: bool = False,
                     one_worker: bool = False) -> Callable[[Callable[..., BaseStorage]], Callable[..., BaseStorage]]:
    """Register an opener ``(url, StorageOptions) -> BaseStorage`` for URLs ``scheme://...``.

    ``example`` is shown in errors, ``title`` (default: the scheme) names it there; ``shared``:
    reached over the network by workers on many machines (opened before any training, so a wrong
    URL fails first); ``file``: the URL names a local file (its folder is created and checked
    writable); ``one_worker``: refuse ``workers > 1``."""
    return STORAGES.register(scheme, example=example, title=title or scheme, shared=shared, file=file,
                             one_worker=one_worker)


def redact(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***`` (also Hydra's ``\\:`` escapes)."""
    return re.sub(r"((?:\\?:)//[^:/@\s]+\\?:)[^@\s]*@", r"\1***@", text)


def scheme_of(url: str) -> str:
    """The registered scheme of ``url`` (``postgresql+psycopg2://`` -> ``postgresql``)."""
    if isinstance(url, str) and url.endswith((".log", ".journal")) and "://" not in url:
        return "journal"
    scheme = url.split(":", 1)[0].split("+", 1)[0] if isinstance(url, str) else ""
    scheme = ALIASES.get(scheme, scheme)
    if scheme not in STORAGES:
        allowed = ", ".join(STORAGES.meta(name)["example"] for name in STORAGES)
        raise AqsvitError(f"storage.url: got {redact(str(url))!r}; allowed: {allowed}")
    return scheme


def file_path(url: str) -> Path:
    """The local file of a file-based URL (``sqlite:///rel.db``, ``sqlite:////abs.db``, a bare path)."""
    if "://" not in url:
        return Path(url)
    rest = url.split(":///", 1)[1] if ":///" in url else url.split("://", 1)[1]
    return Path("/" + rest.lstrip("/")) if rest.startswith("/") else Path(rest)


def is_shared(url: str) -> bool:
    """True when ``url`` names a server that workers on many machines reach."""
    return bool(STORAGES.meta(scheme_of(url))["shared"])


def check_storage(url: str, workers: int = 1) -> str:
    """Validate ``url`` for ``workers`` processes without creating anything but a missing folder;
    returns its scheme."""
    scheme = scheme_of(url)
    meta = STORAGES.meta(scheme)
    if meta["one_worker"] and workers > 1:
        raise AqsvitError(f"storage.url: {meta['title']} serves one worker, got workers={workers}; for several "
                          "workers use a journal file (storage=journal) on one machine or PostgreSQL "
                          "(storage=postgres) across machines")
    if meta["file"]:
        path = file_path(url)
        if scheme == "sqlite" and str(path) in (".", ":memory:"):  # one connection's database, gone with it
            raise AqsvitError(f"storage.url: {url!r} is an in-memory database, which no second connection (the "
                              f"heartbeat, another worker, a resume) sees; give a file, e.g. {meta['example']}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AqsvitError(f"storage.url: cannot create folder {path.parent} ({exc.strerror})") from exc
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise AqsvitError(f"storage.url: {path} is not writable; choose a writable folder")
    return scheme


def create_storage(url: str = DEFAULT_URL, workers: int = 1, grace_period: float = 20,
                   max_retry: int = 3, retry_failed: bool = True) -> BaseStorage:
    """Open (and create if needed) the storage behind ``url`` for ``workers`` processes.

    RDB storages beat every ``grace_period / 4`` seconds; a trial silent for ``grace_period``
    is failed and, with ``retry_failed``, retried (at most ``max_retry`` times) by Optuna's
    RetryHeartbeatStaleTrialCallback. Stepwise samplers need no such retry: they propose a failed
    candidate again themselves (a retried copy whose candidate another worker already holds would
    only be turned into a fresh proposal by their claim)."""
    scheme = check_storage(url, workers)
    options = StorageOptions(grace_period, max_retry, retry_failed)
    try:
        with quiet_experimental():
            return STORAGES[scheme](url, options)
    except AqsvitError:  # the opener's own one line
        raise
    except Exception as exc:  # connection, authentication, missing database, driver
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AqsvitError(f"storage.url: cannot open {redact(url)}: {redact(reason)}") from exc


def _rdb(url: str, options: StorageOptions, engine: dict) -> BaseStorage:
    """An RDB storage under its cache (:mod:`~aqsvit.search.rdb_storage`), opened again (after a short
    random pause, at most ``SCHEMA_TRIES`` times) while it loses the race to create its schema to
    another process opening the same new database.

    Workers, or a worker and optuna-dashboard, started at once on a new database all create the
    tables, the version row and the alembic stamp; all but one fail with a duplicate object. Each
    of those steps commits whole, so the next open finds the winner's schema and creates nothing.
    Any other error (refused connection, authentication, missing database) is raised at once."""
    retry = RetryHeartbeatStaleTrialCallback(max_retry=options.max_retry) if options.retry_failed else None

    def open_rdb() -> BaseStorage:
        backend = CoreRDBStorage(url, engine_kwargs=engine, heartbeat_interval=options.heartbeat_interval,
                                 grace_period=options.grace_seconds, heartbeat_stale_trial_callback=retry)
        return OwnedTrialsCache(backend)

    for attempt in range(1, SCHEMA_TRIES):
        try:
            return open_rdb()
        except Exception as exc:
            if not _lost_creation_race(exc):
                raise
        time.sleep(random.uniform(0.5, 1.0) * min(1.0, 0.05 * 2 ** attempt))
    return open_rdb()


def _lost_creation_race(exc: Exception) -> bool:
    """Whether opening an RDB storage failed because another process created the same schema object
    first: a unique violation (the constructor inserts nothing else), or an object that already
    exists (PostgreSQL's and SQLite's words for a table created meanwhile)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    error = exc if isinstance(exc, DBAPIError) else exc.__cause__  # Optuna wraps some in StorageInternalError
    return isinstance(error, IntegrityError) or (isinstance(error, DBAPIError) and "already exists" in str(error.orig))


@register_storage("sqlite", example="sqlite:///FILE", title="SQLite", file=True, one_worker=True)
def open_sqlite(url: str, options: StorageOptions) -> BaseStorage:
    return _rdb(url, options, {"connect_args": {"timeout": 60}})


@register_storage("journal", example="journal:///FILE", file=True)
def open_journal(url: str, options: StorageOptions) -> BaseStorage:
    path = file_path(url)
    check_journal(path)
    return IndexedJournalStorage(JournalFileBackend(str(path)))


def check_journal(path: Path) -> None:
    """Refuse an existing file that is not an Optuna journal (its first line is a JSON record with an
    ``op_code``), before Optuna reads it (a JSONDecodeError) and appends to it."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise AqsvitError(f"storage.url: {path} is not an Optuna journal (its first line is no journal record); "
                          "allowed: a journal file that aqsvit search wrote, or a new file")


@register_storage("postgresql", example="postgresql://USER@HOST:PORT/DB", shared=True)
def open_postgresql(url: str, options: StorageOptions) -> BaseStorage:
    # the search's reads are point lookups of a few trials; a parallel plan or JIT compilation (chosen
    # when PostgreSQL's estimate of rows per trial is off, as on big, rarely analyzed trial tables)
    # costs more to start than they take: 66 ms instead of 0.2 ms, measured here
    # (no pool_pre_ping: CoreRDBStorage pings the connections that sat idle, not each checkout)
    return _rdb(url, options, {"connect_args": {"options": "-c max_parallel_workers_per_gather=0 -c jit=off"}})


@register_storage("redis", example="redis://HOST:PORT/DB", shared=True)
def open_redis(url: str, options: StorageOptions) -> BaseStorage:
    return IndexedJournalStorage(JournalRedisBackend(url))
