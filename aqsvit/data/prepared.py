"""Evaluation data prepared once per worker and reused by every candidate.

A split is decoded and brought to the model's size once (folder images by ``loader_workers``
processes), kept in its compact stored form (uint8 where the source is 8-bit) and, on a GPU,
resident on the device when it fits ``search.eval_memory_gb`` (else in pinned host memory, copied batch by
batch without blocking). Batches are turned into model input on the device by the data set's
:class:`~aqsvit.data.preprocess.Preprocess`, the same function the plain path applies on the CPU,
so a prepared split yields exactly the model input of the plain one.
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from aqsvit.data.bundle import ImageTensors
from aqsvit.data.preprocess import IDENTITY, Preprocess
from aqsvit.settings import EvalSettings

log = logging.getLogger(__name__)

PREPARED = {"splits": 0}  # splits prepared in this process (tests count them)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # source dataset -> {device: PreparedSplit}


class PreparedSplit(Dataset):
    """A split's images in stored form with labels, ready for repeated evaluation on ``device``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, preprocess: Preprocess,
                 device: str | torch.device) -> None:
        self.images, self.labels, self.preprocess = images, labels, preprocess
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.preprocess.to_input(self.images[index].to(self.device)), self.labels[index]

    @property
    def resident(self) -> bool:
        """Whether the images live on the evaluation device (no copy per batch)."""
        return self.images.device == self.device

    def select(self, index) -> PreparedSplit:
        """The items at ``index`` (a slice: a view; positions: one gather where the images live)."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
            images = self.images[index.to(self.images.device)]
            if images.device.type == "cpu" and self.images.is_pinned():
                images = images.pin_memory()
            return PreparedSplit(images, self.labels[index.to(self.labels.device)], self.preprocess, self.device)
        return PreparedSplit(self.images[index], self.labels[index], self.preprocess, self.device)

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Model-input batches and labels, both on the device."""
        order = torch.randperm(len(self), generator=generator) if shuffle else None
        for start in range(0, len(self), batch_size):
            if order is None:
                x, y = self.images[start:start + batch_size], self.labels[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                x, y = self.images[idx.to(self.images.device)], self.labels[idx.to(self.labels.device)]
            yield self.preprocess.to_input(x.to(self.device, non_blocking=True)), y


class _Stored(Dataset):
    """Items of a folder split in stored form (uint8 ``[C, H, W]``), for the decoding loader."""

    def __init__(self, folder, indices: list[int]) -> None:
        self.folder, self.indices = folder, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.folder.raw(self.indices[i])


def _stored(dataset: Dataset, processes: int) -> tuple[torch.Tensor, torch.Tensor, Preprocess]:
    """The whole split in stored form, its labels, and the preprocessing that makes it model input."""
    if isinstance(dataset, ImageTensors):
        images, labels = dataset.tensors
        return images, labels, dataset.preprocess
    if isinstance(dataset, TensorDataset):
        images, labels = dataset.tensors
        return images, labels, IDENTITY
    base, indices = dataset, list(range(len(dataset)))
    if isinstance(dataset, Subset):
        base, indices = dataset.dataset, list(dataset.indices)
    if hasattr(base, "raw"):  # folder images: decoded once, in worker processes
        source, preprocess = _Stored(base, indices), base.preprocess
    else:  # anything else (event frames): its items as they are
        source, preprocess = dataset, IDENTITY
    images, labels = [], []
    loader = DataLoader(source, batch_size=64, num_workers=processes, persistent_workers=False)
    for x, y in loader:
        images.append(x)
        labels.append(torch.as_tensor(y))
    return torch.cat(images), torch.cat(labels), preprocess


def prepare_split(dataset: Dataset, device: str | torch.device = "cpu",
                  settings: EvalSettings = EvalSettings()) -> PreparedSplit:
    """``dataset`` prepared for repeated evaluation on ``device``; once per dataset and device in a
    process (a second call, e.g. a fine-tuned model's evaluator, gets the same prepared split)."""
    if isinstance(dataset, PreparedSplit):
        return dataset
    device = torch.device(device)
    key = str(device)
    cached = _CACHE.get(dataset, {})
    if key in cached:
        return cached[key]
    PREPARED["splits"] += 1
    images, labels, preprocess = _stored(dataset, settings.processes())
    if device.type == "cuda":
        size = images.numel() * images.element_size()
        if size <= settings.eval_memory_gb * 2 ** 30:
            images = images.to(device)
        else:
            log.info("evaluation split (%.1f GiB) exceeds search.eval_memory_gb=%s: pinned host memory",
                     size / 2 ** 30, settings.eval_memory_gb)
            images = images.pin_memory()
        labels = labels.to(device)
    prepared = PreparedSplit(images, labels, preprocess, device)
    cached[key] = prepared
    _CACHE[dataset] = cached
    return prepared
