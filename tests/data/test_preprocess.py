"""Preprocessing as data configuration: normalisation presets and the folder evaluation transform."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from aqsvit.data import iter_batches, load_dataset
from aqsvit.data.preprocess import PRESETS, resolve_preprocess
from aqsvit.errors import AqsvitError


def test_a_preset_normalises_each_channel_with_its_mean_and_std(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=images, labels=np.arange(40) % 4)
    cifar = resolve_preprocess("cifar10")
    plain = load_dataset("npz", (3, 8, 8), path=str(tmp_path / "rgb.npz"), test_size=10, calib_size=10)
    normed = load_dataset("npz", (3, 8, 8), cifar, path=str(tmp_path / "rgb.npz"), test_size=10, calib_size=10)
    assert normed.test.tensors[0].dtype == torch.uint8  # 8-bit source kept compact
    x_plain, y_plain = next(iter_batches(plain.test, 10))
    x, y = next(iter_batches(normed.test, 10))
    assert torch.equal(y, y_plain)
    mean, std = PRESETS["cifar10"][:2]
    for c in range(3):  # (x / 255 - mean_c) / std_c, channel by channel, in float32
        expected = (x_plain[:, c] - torch.tensor(mean[c])) / torch.tensor(std[c])
        assert torch.equal(x[:, c], expected)
    assert torch.equal(normed.test[3][0], x[3])  # items and batches agree
    assert normed.fingerprint != plain.fingerprint  # the FP reference cache tells them apart


def test_the_model_preset_applies_unless_the_user_overrides_it():
    assert resolve_preprocess(None, "imagenet").mean == PRESETS["imagenet"][0]
    assert resolve_preprocess(None, "imagenet").crop_pct == 0.875
    assert resolve_preprocess("none", "imagenet").mean is None
    assert resolve_preprocess(None, "imagenet", 1.0).crop_pct == 1.0  # the model's published crop wins
    custom = resolve_preprocess({"mean": [0.5], "std": [0.25]}, "imagenet")
    assert torch.equal(custom.to_input(torch.tensor([[[255]]], dtype=torch.uint8)), torch.tensor([[[2.0]]]))
    with pytest.raises(AqsvitError, match="dataset.normalize: got 'cifar'; allowed: none, cifar10"):
        resolve_preprocess("cifar", "none")
    with pytest.raises(AqsvitError, match="dataset.normalize: cifar10 has 3 channels, the model takes 1"):
        load_dataset("digits", (1, 8, 8), resolve_preprocess("cifar10"))
    with pytest.raises(AqsvitError, match="dataset.normalize"):
        load_dataset("digits_events", (8, 2, 16, 16), resolve_preprocess("imagenet"))


def _explicit_eval_transform(path, size: int, crop_pct: float) -> np.ndarray:
    """The evaluation transform written out with PIL: shorter side to floor(size / crop_pct), bicubic;
    the centre size x size."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        short = math.floor(size / crop_pct)
        new = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
        img = img.resize(new, Image.BICUBIC)
        left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
        return np.asarray(img.crop((left, top, left + size, top + size))).transpose(2, 0, 1)


@pytest.mark.parametrize("crop_pct", [0.875, 1.0])
def test_a_folder_image_is_resized_and_centre_cropped_as_explicit_pil_does(tmp_path, crop_pct):
    rng = np.random.default_rng(1)
    sizes = [(21, 13), (13, 21), (16, 16), (30, 11), (9, 9)]  # (width, height): landscape, portrait, square
    for i, (w, h) in enumerate(sizes * 2):
        folder = tmp_path / f"class{i % 2}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    data = load_dataset("folder", (3, 8, 8), resolve_preprocess("imagenet"), path=str(tmp_path),
                        test_size=3, calib_size=3, crop_pct=crop_pct)
    full = data.test.dataset
    assert full.preprocess.crop_pct == crop_pct
    for index, (path, _) in enumerate(full.items):
        raw, _ = full.raw(index)
        assert raw.dtype == torch.uint8
        assert np.array_equal(raw.numpy(), _explicit_eval_transform(path, 8, crop_pct)), path.name
        assert torch.equal(full[index][0], full.preprocess.to_input(raw))
    with pytest.raises(AqsvitError, match="dataset.kwargs.crop_pct"):
        load_dataset("folder", (3, 8, 8), path=str(tmp_path), crop_pct=0)
