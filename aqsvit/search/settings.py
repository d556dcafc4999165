"""What defines a search: :class:`SearchSettings`, validated field by field before any work."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aqsvit.errors import check_choice, check_flag, check_int, check_number, check_text, invalid
from aqsvit.search.stepwise.starts import STARTS
from aqsvit.search.pruners import pruner_options
from aqsvit.search.samplers import is_stepwise, sampler_options
from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace
from aqsvit.search.storages import DEFAULT_URL, scheme_of

SEED_MAX = 2**32 - 1  # NumPy seeds (Optuna's samplers, the data split) stop there
STUDY_NAME_BYTES = 200  # a study name is a folder name of the report and fine-tune outputs (255 bytes at most)
STUDY_NAME_RULE = (f"1..{STUDY_NAME_BYTES} bytes of text without / or \\ or control characters, not . or .., "
                   "not starting with a space")


def check_study_name(name: object) -> str:
    """A study name that is safe as one folder name wherever it becomes a path, and fits every
    storage (Optuna's studies table holds 512 characters)."""
    check_text("search.study_name", name, r"(?!\.\.?\Z)[^\s/\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*", STUDY_NAME_RULE)
    if len(name.encode()) > STUDY_NAME_BYTES:
        raise invalid("search.study_name", name, STUDY_NAME_RULE)
    return name


@dataclass
class SearchSettings:
    """Everything that defines a search (the Hydra config maps onto this one to one)."""

    sampler: str = "greedy"                    # a name in aqsvit.search.samplers.SAMPLERS
    sampler_options: dict[str, Any] = field(default_factory=dict)  # its options (beam: width)
    granularity: str = "layer"
    order: str = "network"
    start: str = "auto"
    schemes: tuple[str, ...] = ("uniform", "pot")
    bits: tuple[int, ...] = (8, 6, 5, 4, 3, 2)
    delta: float = 1.0
    pruner: str = "drift"                      # a name in aqsvit.search.pruners.PRUNERS
    pruner_options: dict[str, Any] = field(default_factory=dict)  # its options (drift: definition, tau, calibrate)
    staged: bool = True
    screen: float = 0.3
    calib_images: int = 64
    calib_batch: int = 32
    n_trials: int | None = None
    seed: int = 0
    study_name: str = "aqsvit"
    storage_url: str = DEFAULT_URL
    workers: int = 1
    grace_period: float = 20.0
    force_new_study: bool = False

    @property
    def sampler_settings(self) -> Any:
        """The sampler's validated settings dataclass (aqsvit.search.samplers)."""
        return sampler_options(self.sampler, self.sampler_options)

    @property
    def pruner_settings(self) -> Any:
        """The pruner's validated settings dataclass (aqsvit.search.pruners)."""
        return pruner_options(self.pruner, self.pruner_options)

    @property
    def stepwise(self) -> bool:
        """Greedy and beam: they verify what they keep and re-propose failed candidates."""
        return is_stepwise(self.sampler)

    def validate(self) -> None:
        """Check every field before any expensive work; one line naming the field on error."""
        SearchSpace.from_units({"check": 1}, self.schemes, self.bits)
        sampler_options(self.sampler, self.sampler_options)  # each validates its own options
        pruner_options(self.pruner, self.pruner_options)
        for name, value, choices in (
                ("search.granularity", self.granularity, GRANULARITIES),
                ("search.order", self.order, ORDERS), ("search.start", self.start, STARTS)):
            check_choice(name, value, choices)
        check_number("delta", self.delta, 0, 100, allowed="numbers 0..100 (accuracy points)")
        check_number("search.screen", self.screen, 0, 1, lo_open=True)
        for name, value in (("search.staged", self.staged), ("search.force_new_study", self.force_new_study)):
            check_flag(name, value)
        check_int("search.calib_images", self.calib_images, 1)
        check_int("search.calib_batch", self.calib_batch, 1)
        if self.n_trials is not None:
            check_int("search.n_trials", self.n_trials, 1)
        check_int("seed", self.seed, 0, SEED_MAX)
        check_study_name(self.study_name)
        check_text("storage.url", self.storage_url)
        scheme_of(self.storage_url)
        check_int("workers", self.workers, 1)
        check_number("grace_period", self.grace_period, 0, lo_open=True)
