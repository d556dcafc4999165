"""The three splits every job needs, and batching that is cheap for in-memory tensors."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from aqsvit.data.preprocess import IDENTITY, Preprocess
from aqsvit.errors import AqsvitError


@dataclass
class DataBundle:
    """Train, calibration and test splits of one data set.

    ``calib`` is disjoint from ``test``: the drift proxy and the pruner look only at it, so the
    accuracy a search reports is never measured on the images that steered it.
    """

    name: str
    train: Dataset
    calib: Dataset
    test: Dataset
    num_classes: int
    input_shape: tuple[int, int, int]
    fingerprint: str
    preprocess: Preprocess = IDENTITY  # how stored images become model input (see aqsvit.data.preprocess)

    @cached_property
    def chance(self) -> float:
        """The accuracy (percent) of always answering the most frequent test label: what a model
        that learned nothing scores, the floor below which an accuracy means nothing."""
        labels = split_labels(self.test).cpu()
        return 100.0 * torch.bincount(labels).max().item() / max(len(labels), 1)


def split_labels(split: Dataset) -> torch.Tensor:
    """The labels of a split, read without decoding its images where the split keeps them apart
    (tensors, a prepared split, image folders and subsets of them)."""
    if isinstance(split, TensorDataset):
        return torch.as_tensor(split.tensors[1]).long()
    if isinstance(getattr(split, "labels", None), torch.Tensor):
        return split.labels.long()
    if isinstance(split, Subset):
        return split_labels(split.dataset)[torch.as_tensor(split.indices, dtype=torch.long)]
    items = getattr(split, "items", None)
    if isinstance(items, list) and all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[1], int) for i in items):
        return torch.as_tensor([label for _, label in items], dtype=torch.long)
    return torch.cat([torch.as_tensor(y) for _, y in iter_batches(split, 1024)]).long()


class ImageTensors(TensorDataset):
    """In-memory images in their stored form (uint8 where the source is 8-bit, else float) and
    labels; items and batches are model input (``preprocess.to_input``)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, preprocess: Preprocess = IDENTITY) -> None:
        super().__init__(images, labels)
        self.preprocess = preprocess

    def __getitem__(self, index):
        return self.preprocess.to_input(self.tensors[0][index]), self.tensors[1][index]

    def select(self, index) -> ImageTensors:
        """The items at ``index`` (a slice, or a list/tensor of positions), in that order."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return ImageTensors(self.tensors[0][index], self.tensors[1][index], self.preprocess)


def seeded_split(n: int, test_size: int, calib_size: int, seed: int) -> tuple[np.ndarray, ...]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into (train, calib, test) index arrays."""
    if test_size < 1 or calib_size < 1 or test_size + calib_size >= n:
        raise AqsvitError(
            f"dataset split: test_size={test_size} and calib_size={calib_size} must be >= 1 and "
            f"leave training images out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    test, calib, train = np.split(order, [test_size, test_size + calib_size])
    return train, calib, test


def tensor_bundle(name: str, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                  test_size: int, calib_size: int, seed: int, preprocess: Preprocess = IDENTITY) -> DataBundle:
    """A bundle over in-memory images ``x`` [N, C, H, W] (uint8, or float in [0, 1]) and labels ``y`` [N]."""
    if len(x) == 0:
        raise AqsvitError(f"dataset {name}: no images")
    train, calib, test = seeded_split(len(x), test_size, calib_size, seed)
    digest = hashlib.sha256()
    # the float values are hashed, so a uint8 copy of the same images keeps the fingerprint
    for part in (x.float() / 255.0 if x.dtype == torch.uint8 else x, y,
                 torch.as_tensor(np.concatenate([train, calib, test]))):
        digest.update(part.contiguous().numpy().tobytes())
    digest.update(preprocess.describe().encode())
    full = ImageTensors(x, y, preprocess)
    return DataBundle(name, full.select(train), full.select(calib), full.select(test), num_classes,
                      tuple(x.shape[1:]), digest.hexdigest()[:16], preprocess)


def iter_batches(dataset: Dataset, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` model-input batches; in-memory tensors are sliced, not collated per
    item; a prepared split yields its batches on its device (:mod:`aqsvit.data.prepared`)."""
    if hasattr(dataset, "batches"):
        yield from dataset.batches(batch_size, shuffle=shuffle, generator=generator)
        return
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        to_input = dataset.preprocess.to_input if isinstance(dataset, ImageTensors) else (lambda t: t)
        order = torch.randperm(len(x), generator=generator) if shuffle else None
        for start in range(0, len(x), batch_size):
            if order is None:
                yield to_input(x[start:start + batch_size]), y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield to_input(x[idx]), y[idx]
        return
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def select(dataset: Dataset, index) -> Dataset:
    """The items of ``dataset`` at ``index`` (a slice or a sequence of positions), in that order."""
    if hasattr(dataset, "select"):
        return dataset.select(index)
    if isinstance(dataset, TensorDataset):
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return TensorDataset(*(t[index] for t in dataset.tensors))
    return Subset(dataset, range(len(dataset))[index] if isinstance(index, slice) else list(index))


def take(dataset: Dataset, n: int) -> Dataset:
    """The first ``n`` items (all of them when there are fewer)."""
    return dataset if n >= len(dataset) else select(dataset, slice(0, n))
