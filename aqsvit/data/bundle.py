"""The three splits every job needs, and batching that is cheap for in-memory tensors."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

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
                  test_size: int, calib_size: int, seed: int) -> DataBundle:
    """A bundle over in-memory images ``x`` [N, C, H, W] in [0, 1] and labels ``y`` [N]."""
    if len(x) == 0:
        raise AqsvitError(f"dataset {name}: no images")
    train, calib, test = seeded_split(len(x), test_size, calib_size, seed)
    digest = hashlib.sha256()
    for part in (x, y, torch.as_tensor(np.concatenate([train, calib, test]))):
        digest.update(part.contiguous().numpy().tobytes())
    def subset(idx: np.ndarray) -> TensorDataset:
        index = torch.as_tensor(idx)
        return TensorDataset(x[index], y[index])
    return DataBundle(name, subset(train), subset(calib), subset(test), num_classes,
                      tuple(x.shape[1:]), digest.hexdigest()[:16])


def iter_batches(dataset: Dataset, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` batches; in-memory tensors are sliced, not collated per item."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        order = torch.randperm(len(x), generator=generator) if shuffle else None
        for start in range(0, len(x), batch_size):
            if order is None:
                yield x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield x[idx], y[idx]
        return
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def take(dataset: Dataset, n: int) -> Dataset:
    """The first ``n`` items (all of them when there are fewer)."""
    if n >= len(dataset):
        return dataset
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t[:n] for t in dataset.tensors))
    return Subset(dataset, range(n))
