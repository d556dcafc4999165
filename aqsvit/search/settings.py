"""What defines a search: :class:`SearchSettings` (defined, with every other setting, in the one
schema :mod:`aqsvit.settings`; checked when built)."""
from __future__ import annotations

from aqsvit.settings import SEED_MAX, STUDY_NAME_BYTES, STUDY_NAME_RULE, SearchSettings, check_study_name

__all__ = ["SEED_MAX", "STUDY_NAME_BYTES", "STUDY_NAME_RULE", "SearchSettings", "check_study_name"]
