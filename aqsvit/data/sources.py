"""Data sources: the shipped digits, an ``.npz`` of images, ImageNet-layout folders, and events.

Nothing here downloads: digits ship inside scikit-learn's wheel; the others read local files.
"""
from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from aqsvit.data.bundle import DataBundle, seeded_split, tensor_bundle
from aqsvit.data.events import digits_events, dvs
from aqsvit.data.images import compact, to_model_input
from aqsvit.data.preprocess import IDENTITY, Preprocess, decode_image
from aqsvit.errors import AqsvitError, check_int, invalid
from aqsvit.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def digits(input_shape: tuple[int, int, int] = (1, 8, 8), test_size: int = 450,
           calib_size: int = 256, seed: int = 0, preprocess: Preprocess = IDENTITY) -> DataBundle:
    """scikit-learn's 1797 8x8 digits (shipped in its wheel), resized to ``input_shape``."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = to_model_input(raw.images.astype(np.float32) / 16.0, input_shape, "digits")
    y = torch.as_tensor(raw.target, dtype=torch.long)
    return tensor_bundle("digits", x, y, 10, test_size, calib_size, seed, preprocess)


def npz(path: str, input_shape: tuple[int, int, int], test_size: int = 450,
        calib_size: int = 256, seed: int = 0, preprocess: Preprocess = IDENTITY) -> DataBundle:
    """An ``.npz`` with arrays ``images`` and ``labels`` (integers from 0)."""
    file = Path(path)
    if not file.is_file():
        raise AqsvitError(f"dataset.path: {file} is not a file; expected an .npz with 'images' and 'labels'")
    try:
        archive = np.load(file)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise AqsvitError(f"dataset.path ({file}): not an .npz archive ({str(exc).split('. ')[0]}); "
                          "allowed: an .npz with arrays 'images' and 'labels'") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise AqsvitError(f"dataset.path ({file}): a single array, not an .npz; "
                          "allowed: an .npz with arrays 'images' and 'labels'")
    with archive:
        missing = {"images", "labels"} - set(archive.files)
        if missing:
            raise invalid(f"dataset.path ({file}) arrays", sorted(archive.files), "images, labels")
        try:
            images, labels = archive["images"], archive["labels"]
        except ValueError as exc:  # object arrays need pickle, which np.load refuses
            raise AqsvitError(f"dataset.path ({file}): {exc}; allowed: numeric arrays") from exc
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # a truncated or corrupt member
            raise AqsvitError(f"dataset.path ({file}): a damaged .npz archive ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'cut short'}); allowed: an intact .npz "
                              "with arrays 'images' and 'labels'") from exc
    source = f"dataset.path ({file})"
    check_arrays(source, images, labels)
    x = compact(to_model_input(images, input_shape, source), images.dtype)
    y = torch.as_tensor(labels.astype(np.int64))
    return tensor_bundle(file.stem, x, y, int(y.max()) + 1 if len(y) else 0, test_size, calib_size, seed,
                         preprocess)


def check_arrays(source: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Images numeric and finite, labels a 1-D integer array from 0, one label per image."""
    if images.dtype.kind not in "biuf":
        raise AqsvitError(f"{source}: images are of dtype {images.dtype}; allowed: integer or float arrays")
    if images.size and not np.isfinite(images).all():
        bad = int((~np.isfinite(images.reshape(len(images), -1))).any(1).sum())
        raise AqsvitError(f"{source}: {bad} of {len(images)} images hold NaN or infinite values; "
                          "allowed: finite numbers")
    if labels.ndim != 1 or labels.dtype.kind not in "biu" or (labels.dtype.kind == "b"):
        raise AqsvitError(f"{source}: labels have shape {labels.shape} and dtype {labels.dtype}; "
                          "allowed: a 1-D integer array")
    if len(labels) and labels.min() < 0:
        raise AqsvitError(f"{source}: labels include {labels.min()}; allowed: integers >= 0")
    if images.ndim < 1 or len(images) != len(labels):
        raise AqsvitError(f"{source}: {len(images) if images.ndim else 0} images but {len(labels)} labels; "
                          "allowed: one label per image")


class ImageFolder(Dataset):
    """Class sub-folders of images, read with Pillow on demand: the evaluation transform (resize the
    shorter side, centre crop; :func:`aqsvit.data.preprocess.center_crop_resize`) to ``input_shape``
    as uint8 (:meth:`raw`), then ``preprocess.to_input`` (items)."""

    def __init__(self, root: Path, input_shape: tuple[int, int, int],
                 classes: list[str] | None = None, preprocess: Preprocess = IDENTITY) -> None:
        self.input_shape = input_shape
        self.preprocess = preprocess
        self.decodes = 0  # image files read by this process (a prepared split reads each once)
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

    def raw(self, index: int) -> tuple[torch.Tensor, int]:
        """Item ``index`` as stored: uint8 ``[C, H, W]`` and its label."""
        path, label = self.items[index]
        self.decodes += 1
        try:
            return decode_image(path, self.input_shape, self.preprocess.crop_pct), label
        except OSError as exc:
            raise AqsvitError(f"dataset.path: cannot read image {path} ({exc})") from exc

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.raw(index)
        return self.preprocess.to_input(image), label

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, label in self.items:
            digest.update(f"{path.name}:{label}:{path.stat().st_size}".encode())
        return digest.hexdigest()[:16]


def image_folder(path: str, input_shape: tuple[int, int, int], test_size: int = 450,
                 calib_size: int = 256, seed: int = 0, crop_pct: float | None = None,
                 preprocess: Preprocess = IDENTITY) -> DataBundle:
    """ImageNet layout: ``root/train/<class>/*`` and ``root/val/<class>/*`` when both exist
    (calibration is cut from train), else ``root/<class>/*`` split with ``seed``. Every image gets
    the evaluation transform with ``crop_pct`` (None: the normalisation preset's, 0.875 for imagenet)."""
    root = Path(path)
    if not root.is_dir():
        raise AqsvitError(f"dataset.path: {root} is not a folder; expected class sub-folders of images")
    preprocess = preprocess.with_crop(crop_pct)
    if (root / "train").is_dir() and (root / "val").is_dir():
        train_all = ImageFolder(root / "train", input_shape, preprocess=preprocess)
        test = ImageFolder(root / "val", input_shape, train_all.classes, preprocess)
        order = np.random.default_rng(seed).permutation(len(train_all))
        calib_n = min(calib_size, len(train_all) - 1)
        calib, train = Subset(train_all, order[:calib_n].tolist()), Subset(train_all, order[calib_n:].tolist())
        fingerprint = train_all.fingerprint() + test.fingerprint()
        classes = len(train_all.classes)
    else:
        full = ImageFolder(root, input_shape, preprocess=preprocess)
        train_idx, calib_idx, test_idx = seeded_split(len(full), min(test_size, len(full) // 3),
                                                      min(calib_size, len(full) // 3), seed)
        train, calib, test = (Subset(full, i.tolist()) for i in (train_idx, calib_idx, test_idx))
        fingerprint, classes = full.fingerprint(), len(full.classes)
    transform = f"crop {preprocess.crop_pct} {preprocess.describe()}"
    digest = hashlib.sha256(f"{fingerprint}:{seed}:{calib_size}:{transform}".encode()).hexdigest()[:16]
    return DataBundle(root.name, train, calib, test, classes, input_shape, digest, preprocess)


DATASETS: Registry[Callable[..., DataBundle]] = Registry("dataset.name")


def register_dataset(name: str, *, events: bool = False) -> Callable:
    """Register a data set builder ``fn(input_shape, [preprocess,] **dataset.kwargs) -> DataBundle``.
    Image builders take ``preprocess`` (the normalisation preset and crop); ``events=True`` ones
    give event frames (counts) and take none."""
    return DATASETS.register(name, events=events)


register_dataset("digits")(digits)
register_dataset("npz")(npz)
register_dataset("folder")(image_folder)
register_dataset("digits_events", events=True)(digits_events)
register_dataset("dvs", events=True)(dvs)


def load_dataset(name: str, input_shape: tuple[int, ...], preprocess: Preprocess = IDENTITY,
                 **kwargs) -> DataBundle:
    """Build the named data set for a model taking ``input_shape``, its images turned into model
    input by ``preprocess`` (see :func:`aqsvit.data.preprocess.resolve_preprocess`)."""
    build = DATASETS[name]
    for key in ("test_size", "calib_size"):  # the split sizes every image data set takes
        if key in kwargs:
            check_int(f"dataset.{key}", kwargs[key], 0)
    if DATASETS.meta(name)["events"]:
        if preprocess.mean is not None:
            raise invalid("dataset.normalize", preprocess.name, "none (event frames are counts, not images)")
        return build(input_shape=input_shape, **kwargs)
    preprocess.check_channels(input_shape[0])
    return build(input_shape=input_shape, preprocess=preprocess, **kwargs)
