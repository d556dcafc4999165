"""Data sources: the shipped digits, an ``.npz`` of images, ImageNet-layout folders, and events.

Nothing here downloads: digits ship inside scikit-learn's wheel; the others read local files.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from aqsvit.data.bundle import DataBundle, seeded_split, tensor_bundle
from aqsvit.data.events import digits_events, dvs
from aqsvit.data.images import to_model_input
from aqsvit.errors import AqsvitError, invalid

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def digits(input_shape: tuple[int, int, int] = (1, 8, 8), test_size: int = 450,
           calib_size: int = 256, seed: int = 0) -> DataBundle:
    """scikit-learn's 1797 8x8 digits (shipped in its wheel), resized to ``input_shape``."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = to_model_input(raw.images.astype(np.float32) / 16.0, input_shape, "digits")
    y = torch.as_tensor(raw.target, dtype=torch.long)
    return tensor_bundle("digits", x, y, 10, test_size, calib_size, seed)


def npz(path: str, input_shape: tuple[int, int, int], test_size: int = 450,
        calib_size: int = 256, seed: int = 0) -> DataBundle:
    """An ``.npz`` with arrays ``images`` and ``labels`` (integers from 0)."""
    file = Path(path)
    if not file.is_file():
        raise AqsvitError(f"dataset.path: {file} is not a file; expected an .npz with 'images' and 'labels'")
    with np.load(file) as archive:
        missing = {"images", "labels"} - set(archive.files)
        if missing:
            raise invalid(f"dataset.path ({file}) arrays", sorted(archive.files), "images, labels")
        images, labels = archive["images"], archive["labels"]
    if len(images) != len(labels):
        raise AqsvitError(f"dataset.path ({file}): {len(images)} images but {len(labels)} labels")
    x = to_model_input(images, input_shape, f"dataset.path ({file})")
    y = torch.as_tensor(labels.astype(np.int64))
    return tensor_bundle(file.stem, x, y, int(y.max()) + 1 if len(y) else 0, test_size, calib_size, seed)


class ImageFolder(Dataset):
    """Class sub-folders of images, read with Pillow on demand and brought to ``input_shape``."""

    def __init__(self, root: Path, input_shape: tuple[int, int, int],
                 classes: list[str] | None = None) -> None:
        self.input_shape = input_shape
        self.classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
        self.items = [
            (path, label)
            for label, name in enumerate(self.classes)
            for path in sorted((root / name).glob("*")) if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.items:
            raise AqsvitError(f"dataset.path: no images ({', '.join(IMAGE_SUFFIXES)}) in class folders under {root}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        channels, height, width = self.input_shape
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
        return to_model_input(array[None], self.input_shape, str(path))[0], label

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, label in self.items:
            digest.update(f"{path.name}:{label}:{path.stat().st_size}".encode())
        return digest.hexdigest()[:16]


def image_folder(path: str, input_shape: tuple[int, int, int], test_size: int = 450,
                 calib_size: int = 256, seed: int = 0) -> DataBundle:
    """ImageNet layout: ``root/train/<class>/*`` and ``root/val/<class>/*`` when both exist
    (calibration is cut from train), else ``root/<class>/*`` split with ``seed``."""
    root = Path(path)
    if not root.is_dir():
        raise AqsvitError(f"dataset.path: {root} is not a folder; expected class sub-folders of images")
    if (root / "train").is_dir() and (root / "val").is_dir():
        train_all = ImageFolder(root / "train", input_shape)
        test = ImageFolder(root / "val", input_shape, train_all.classes)
        order = np.random.default_rng(seed).permutation(len(train_all))
        calib_n = min(calib_size, len(train_all) - 1)
        calib, train = Subset(train_all, order[:calib_n].tolist()), Subset(train_all, order[calib_n:].tolist())
        fingerprint = train_all.fingerprint() + test.fingerprint()
        classes = len(train_all.classes)
    else:
        full = ImageFolder(root, input_shape)
        train_idx, calib_idx, test_idx = seeded_split(len(full), min(test_size, len(full) // 3),
                                                      min(calib_size, len(full) // 3), seed)
        train, calib, test = (Subset(full, i.tolist()) for i in (train_idx, calib_idx, test_idx))
        fingerprint, classes = full.fingerprint(), len(full.classes)
    digest = hashlib.sha256(f"{fingerprint}:{seed}:{calib_size}".encode()).hexdigest()[:16]
    return DataBundle(root.name, train, calib, test, classes, input_shape, digest)


DATASETS: dict[str, Callable[..., DataBundle]] = {
    "digits": digits, "npz": npz, "folder": image_folder, "digits_events": digits_events, "dvs": dvs}


def load_dataset(name: str, input_shape: tuple[int, ...], **kwargs) -> DataBundle:
    """Build the named data set for a model taking ``input_shape``."""
    if name not in DATASETS:
        raise invalid("dataset.name", name, sorted(DATASETS))
    return DATASETS[name](input_shape=input_shape, **kwargs)
