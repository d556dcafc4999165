"""Opening what a search left, for the commands that only read it (report, finetune, dashboard) and
for a search about to resume: no file, folder or study is created, and a missing one is one line
naming what exists."""
from __future__ import annotations

import optuna
from optuna.storages import BaseStorage

from aqsvit.errors import AqsvitError, invalid
from aqsvit.search.vocabulary import FINGERPRINT_ATTR
from aqsvit.search.storages import STORAGES, create_storage, file_path, redact, scheme_of


def stored_file_missing(url: str) -> bool:
    """True when ``url`` names a local file (SQLite, journal) that does not exist yet."""
    return bool(STORAGES.meta(scheme_of(url))["file"]) and not file_path(url).is_file()


def open_existing(url: str, grace_period: float, command: str) -> BaseStorage:
    """The storage a search wrote, for ``aqsvit <command>`` that only reads it: a missing file is
    refused without creating it (or its folder)."""
    if stored_file_missing(url):
        raise AqsvitError(f"storage.url: {redact(url)} does not exist; aqsvit {command} reads a study that aqsvit "
                          "search wrote (run aqsvit search first, or point storage.url at its database)")
    return create_storage(url, 1, grace_period)


def study_names(storage: BaseStorage) -> list[str]:
    """The names of every study in ``storage``, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())


def load_existing(storage: BaseStorage, name: str, field: str = "search.study_name") -> optuna.Study:
    """The study ``name`` in ``storage``, or one line naming the studies that exist."""
    names = study_names(storage)
    if name not in names:
        raise invalid(field, name, ", ".join(names) if names else "none: this storage holds no study yet")
    return optuna.load_study(study_name=name, storage=storage)


def recorded_fingerprint(storage: BaseStorage, name: str) -> dict | None:
    """The aqsvit fingerprint recorded on study ``name`` (None: no such study, or none recorded)."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get(FINGERPRINT_ATTR)
