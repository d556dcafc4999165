"""Registry, checkpoints and data loaders on real small inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aqsvit.data import load_dataset
from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, list_models, load_checkpoint, model_spec, save_checkpoint
from aqsvit.quant import quantizable_layers


def test_registry_lists_and_builds_models_that_map_images_to_scores():
    assert {"spikformer_digits", "spikformer_wide", "spikformer_imagenet_8_384", "spikformer_imagenet_8_512",
            "spikformer_imagenet_8_768", "qkformer_digits", "sdt_digits"} <= set(list_models())
    for name in ("spikformer_digits", "qkformer_digits", "sdt_digits"):
        model = create_model(name)
        assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert len(quantizable_layers(create_model("spikformer_digits"))) == 18
    assert len(quantizable_layers(create_model("spikformer_wide"), split_qkv=False)) >= 30


def test_unknown_model_and_kwarg_are_named():
    with pytest.raises(AqsvitError, match=r"model.name: got 'vit'; allowed: .*spikformer_digits"):
        create_model("vit")
    with pytest.raises(AqsvitError, match=r"model.depth: got 3; allowed: .*depths"):
        model_spec("spikformer_digits", depth=3)


def test_checkpoint_roundtrip_and_every_kind_of_bad_file(tmp_path):
    model = create_model("spikformer_digits", depths=1)
    path = save_checkpoint(tmp_path / "a.pt", model, 91.5, "abc")
    ckpt = load_checkpoint(path)
    assert ckpt.fp_accuracy == 91.5 and ckpt.spec == model.spec
    rebuilt = ckpt.build()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(rebuilt(x), model.eval()(x))

    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(AqsvitError, match="not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AqsvitError, match="not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    with pytest.raises(AqsvitError, match=r"rejected by torch.load\(weights_only=True\)"):
        load_checkpoint(tmp_path / "pickled.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(AqsvitError, match="not an aqsvit checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(AqsvitError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_of_another_model_names_the_keys(tmp_path):
    from aqsvit.models.checkpoint import load_weights
    small = load_checkpoint(save_checkpoint(tmp_path / "s.pt", create_model("spikformer_digits", depths=1), 1.0, "x"))
    with pytest.raises(AqsvitError, match=r"missing keys: blocks\.1\."):
        load_weights(create_model("spikformer_digits"), small.state_dict, source="s.pt")


def test_digits_split_is_seeded_and_disjoint():
    a = load_dataset("digits", (1, 8, 8), seed=0)
    b = load_dataset("digits", (1, 8, 8), seed=0)
    c = load_dataset("digits", (1, 8, 8), seed=1)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert (len(a.train), len(a.calib), len(a.test)) == (1091, 256, 450)
    rows = lambda ds: {tuple(r.flatten().tolist()) for r in ds.tensors[0]}  # noqa: E731
    assert not rows(a.calib) & rows(a.test) or len(rows(a.calib) & rows(a.test)) < 5  # digits has a few exact duplicates
    assert a.train.tensors[0].max() <= 1 and a.train.tensors[0].min() >= 0


def test_npz_loader_resizes_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", images=rng.integers(0, 255, (60, 20, 20, 3), dtype=np.uint8),
             labels=rng.integers(0, 3, 60))
    bundle = load_dataset("npz", (1, 8, 8), path=str(tmp_path / "rgb.npz"), test_size=20, calib_size=10)
    assert bundle.test.tensors[0].shape == (20, 1, 8, 8) and bundle.num_classes == 3
    bundle = load_dataset("npz", (3, 16, 16), path=str(tmp_path / "rgb.npz"), test_size=20, calib_size=10)
    assert bundle.train.tensors[0].shape == (30, 3, 16, 16)
    np.savez(tmp_path / "bad.npz", images=np.zeros((5, 2, 2, 2, 2)), labels=np.zeros(5, dtype=np.int64))
    with pytest.raises(AqsvitError, match=r"images have shape \(5, 2, 2, 2, 2\); allowed"):
        load_dataset("npz", (1, 8, 8), path=str(tmp_path / "bad.npz"), test_size=1, calib_size=1)
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8)), labels=np.zeros(0, dtype=np.int64))
    with pytest.raises(AqsvitError, match="no images"):
        load_dataset("npz", (1, 8, 8), path=str(tmp_path / "empty.npz"))


def test_image_folder_in_imagenet_layout(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    bundle = load_dataset("folder", (1, 8, 8), path=str(tmp_path), calib_size=4)
    assert (len(bundle.train), len(bundle.calib), len(bundle.test)) == (8, 4, 4)
    x, y = bundle.test[3]
    assert x.shape == (1, 8, 8) and y == 1 and 0 <= x.min() <= x.max() <= 1
    with pytest.raises(AqsvitError, match="dataset.path: no images"):
        load_dataset("folder", (1, 8, 8), path=str(tmp_path / "train" / "cat"))
    with pytest.raises(AqsvitError, match=r"dataset.name: got 'cifar'; allowed: digits, digits_events, dvs, folder, npz"):
        load_dataset("cifar", (1, 8, 8))
