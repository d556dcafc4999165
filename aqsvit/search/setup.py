"""The one assembler: :class:`~aqsvit.settings.Settings` in, model, data, FP reference, evaluator,
storage and study out. Every CLI command, :func:`aqsvit.quantize` and the benchmarks build a search
through here, so that a model, its data and its ``Evaluator`` are made the same way everywhere, and
each run opens its storage once.

* :func:`reference`: the model spec, the data and the FP reference checkpoint (trained and cached
  on first use, unless the caller says why not);
* :meth:`Reference.evaluator`: the ``Evaluator`` over it, with the run's evaluation settings;
* :func:`assemble`: an evaluator and :class:`~aqsvit.settings.SearchSettings` into a prepared
  :class:`~aqsvit.search.run.Search` (storage opened here when the caller has none);
* :func:`existing_study`: the storage and study a search wrote, for the commands that only read;
* :func:`search_for`: all of it for the CLI's search, report and finetune (``command`` other than
  search only reads: the study must exist, nothing is trained or written).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import optuna
import torch
from optuna.storages import BaseStorage

from aqsvit.data import DataBundle, load_dataset
from aqsvit.data.preprocess import resolve_preprocess
from aqsvit.devices import pin_worker
from aqsvit.hardware import TARGETS
from aqsvit.models import Checkpoint, ModelInfo, ModelSpec, create_model, model_info
from aqsvit.models.target import check_classifier
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.existing import load_existing, open_existing, recorded_fingerprint, stored_file_missing
from aqsvit.search.fingerprint import FINGERPRINT_ATTR, REFERENCE_KEY, compare_fingerprint
from aqsvit.search.run import Search, prepare
from aqsvit.search.storages import check_storage, create_storage
from aqsvit.settings import EvalSettings, SearchSettings, Settings
from aqsvit.training import check_labels, check_learned, get_reference


@dataclass(frozen=True)
class Reference:
    """A model spec, its data and its FP reference checkpoint."""

    spec: ModelSpec
    data: DataBundle
    checkpoint: Checkpoint

    @property
    def key(self) -> str:
        """The reference's identity in the resume fingerprint (checkpoint and data)."""
        return f"{self.checkpoint.sha256[:16]}-{self.data.fingerprint}"

    def evaluator(self, settings: Settings, device: str) -> Evaluator:
        """The evaluator over the reference model (``quant.split_qkv``, ``search.eval_*``)."""
        return Evaluator(self.checkpoint.build(), self.data, self.checkpoint.fp_accuracy,
                         split_qkv=settings.quant.split_qkv, device=device, settings=settings.eval,
                         target=TARGETS[settings.search.target])


def reference(settings: Settings, device: str = "cpu", searchable: bool = True, spec: ModelSpec | None = None,
              untrained: str | None = None) -> Reference:
    """Model spec (``spec``, else the settings'), data and FP reference checkpoint (trained and
    cached on first use, unless ``untrained`` says why not); with ``searchable`` a reference at
    chance level is refused (every assignment would look lossless)."""
    torch.manual_seed(settings.seed)
    spec = spec or settings.model.spec()
    info = ModelInfo(spec.name) if spec.target else model_info(spec.name)
    preprocess = resolve_preprocess(settings.dataset.normalize, info.preprocess, info.crop_pct)
    data = load_dataset(settings.dataset.name, spec.input_shape, preprocess, seed=settings.seed,
                        **settings.dataset.kwargs)
    check_labels(spec, data)
    if spec.target:  # before any training: a wrong model fails as one line
        check_classifier(create_model(spec), spec.input_shape, data.num_classes, spec.target)
    ckpt = get_reference(spec, data, root=settings.checkpoint_dir, checkpoint=settings.checkpoint,
                         progress=settings.progress, seed=settings.seed, device=device, untrained=untrained,
                         **dataclasses.asdict(settings.train))
    if searchable:
        check_learned(data, ckpt.fp_accuracy)
    return Reference(spec, data, ckpt)


def assemble(evaluator: Evaluator, settings: SearchSettings, reference_key: str, cache_dir: str | None = None,
             storage: BaseStorage | None = None, read_only: bool = False) -> Search:
    """The prepared search of ``evaluator`` under ``settings`` (:func:`aqsvit.search.run.prepare`). A
    caller without ``storage`` has it opened by ``prepare``, once, from ``settings.storage_url``, after
    delta has been checked against the reference: a refused search creates no study file."""
    return prepare(evaluator, settings, reference_key, cache_dir, storage, read_only=read_only)


def existing_study(settings: SearchSettings, command: str) -> optuna.Study:
    """The study a search wrote, for ``aqsvit <command>`` that only reads (no file, folder or study
    is created; a study aqsvit did not make is refused)."""
    storage = open_existing(settings.storage_url, settings.grace_period, command)
    study = load_existing(storage, settings.study_name)
    return study


def search_for(settings: Settings, command: str = "search") -> Search:
    """Storage, device, reference, evaluator and the created-or-resumed study of the CLI's run. Any
    ``command`` but search only reads: the study must exist, and nothing is trained or written."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = settings.search
    device = pin_worker(settings.device, settings.worker, run.workers)
    reading = command != "search"
    if reading:
        storage = existing_study(run, command)._storage
    else:
        # a server is reached (and an existing file opened) now, so a wrong URL or a study made with
        # another model fails before any training; a new study file is only created by assemble,
        # once the checkpoint, the data and the settings that need them have passed
        check_storage(run.storage_url, run.workers)
        storage = None if stored_file_missing(run.storage_url) else create_storage(
            run.storage_url, run.workers, run.grace_period, retry_failed=not run.stepwise)
    spec = settings.model.spec()
    recorded = None
    if storage is not None and not run.force_new_study:
        recorded = recorded_fingerprint(storage, run.study_name)
        if reading or recorded is not None:
            compare_fingerprint(run.study_name, recorded, {"model": spec.describe()})
    if reading:
        untrained = f"aqsvit {command} only reads: run aqsvit search with the same settings first, or give checkpoint=FILE"
    elif recorded is not None:
        untrained = (f"study {run.study_name!r} was made on reference {recorded.get(REFERENCE_KEY)}, and a newly "
                     "trained one would not resume it: use the train.* settings, seed and checkpoint_dir it was made "
                     "with, give checkpoint=FILE, or pass --force-new-study")
    else:
        untrained = None
    ref = reference(settings, device, spec=spec, untrained=untrained)
    return assemble(ref.evaluator(settings, device), run, ref.key, settings.checkpoint_dir, storage, read_only=reading)


def stored_study(settings: Settings, command: str) -> optuna.Study:
    """The study ``aqsvit <command>`` reads as it is stored (dashboard, pick): one aqsvit search
    wrote; nothing else is built (no model, no data, no evaluation)."""
    study = existing_study(settings.search, command)
    compare_fingerprint(study.study_name, study.user_attrs.get(FINGERPRINT_ATTR), {})  # a study aqsvit made
    return study


__all__ = ["EvalSettings", "Reference", "assemble", "existing_study", "reference", "search_for", "stored_study"]
