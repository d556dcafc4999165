"""Event data end to end (shipped images -> DVS events -> tonic frames -> event model -> search),
the tonic loader on a small local DVSGesture folder, and importing published Spikformer weights."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from aqsvit.data import load_dataset
from aqsvit.data.events import images_to_events
from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, model_spec
from aqsvit.models.checkpoint import load_checkpoint


def test_events_from_images_are_seeded_and_follow_the_edges():
    image = np.zeros((16, 16))
    image[4:12, 6:10] = 1.0
    a, b = images_to_events(image[None], seed=1), images_to_events(image[None], seed=1)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], images_to_events(image[None], seed=2)[0])
    events = a[0]
    assert np.all(np.diff(events["t"]) >= 0) and set(np.unique(events["p"])) == {False, True}
    on_edges = np.isin(events["x"], [5, 6, 7, 8, 9, 10, 11]) & np.isin(events["y"], range(3, 15))
    assert on_edges.mean() > 0.8  # a moving bar fires at its edges, noise elsewhere is rare


@pytest.mark.slow
def test_event_model_trains_on_shipped_events_and_a_greedy_search_runs(tmp_path):
    common = ["model=spikformer_dvs_digits", "dataset=digits_events", f"checkpoint_dir={tmp_path}/ck",
              "progress=false", "train.epochs=10"]
    out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", *common, "search.granularity=block",
                          "quant.schemes=[uniform]", "quant.bits=[8,4,2]", f"storage.url=sqlite:///{tmp_path}/events.db"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    fp = float(out.stdout.split("FP accuracy ")[1].split("%")[0])
    assert fp > 30  # 10 classes: far above chance after a few epochs on events
    assert "| chosen" in out.stdout and "no feasible assignment" not in out.stdout
    spec = model_spec("spikformer_dvs_digits")
    data = load_dataset("digits_events", spec.input_shape, seed=0)
    x, _ = data.test[:2]
    assert x.shape == (2, *spec.input_shape) and x.sum() > 0


def write_dvsgesture(root, sensor=128, per_split=100, seed=0):
    """A tiny DVSGesture folder in tonic's layout, its recordings made from shipped digits."""
    from sklearn.datasets import load_digits
    images = load_digits().images / 16.0
    big = np.kron(images[: 2 * per_split], np.ones((sensor // 8, sensor // 8)))
    events = images_to_events(big, seed=seed, saccade=6, steps_per_saccade=4)
    base = root / "DVSGesture"
    for split, offset in (("ibmGestureTrain", 0), ("ibmGestureTest", per_split)):
        (base / f"{split}.tar.gz").parent.mkdir(parents=True, exist_ok=True)
        (base / f"{split}.tar.gz").write_bytes(b"placeholder archive")
        for i in range(per_split):
            folder = base / split / f"user{i // 10 + 1:02d}_fluorescent"
            folder.mkdir(parents=True, exist_ok=True)
            e = events[offset + i]
            rows = np.stack([e["x"], e["y"], e["p"], e["t"] // 1000], axis=1).astype(np.float64)
            np.save(folder / f"{i % 10}.npy", rows)


def test_dvsgesture_folder_loads_with_tonic_into_model_frames(tmp_path):
    write_dvsgesture(tmp_path)
    spec = model_spec("spikformer_dvs_digits")
    data = load_dataset("dvs", spec.input_shape, path=str(tmp_path), kind="dvsgesture", calib_size=20)
    assert (len(data.train), len(data.calib), len(data.test)) == (80, 20, 100)
    x, label = data.test[0]
    assert x.shape == spec.input_shape and x.sum() > 0 and 0 <= label < 11
    assert create_model(spec)(x[None]).shape == (1, 10)
    with pytest.raises(AqsvitError, match="aqsvit does not download"):
        load_dataset("dvs", spec.input_shape, path=str(tmp_path / "empty"), kind="dvsgesture")
    (tmp_path / "cifar").mkdir()
    with pytest.raises(AqsvitError, match="no CIFAR10DVS files .* aqsvit does not download"):
        load_dataset("dvs", spec.input_shape, path=str(tmp_path / "cifar"), kind="cifar10dvs")
    with pytest.raises(AqsvitError, match="event data needs an event model"):
        load_dataset("dvs", (1, 8, 8), path=str(tmp_path))


def reference_state_dict(embed: int, depths: int, mlp_ratio: float, classes: int, in_channels: int) -> dict:
    """The key names and shapes of the reference implementation (ZK-Zhou/spikformer), from its config."""
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    state = {}

    def bn(name, n):
        state.update({f"{name}.weight": rand(n), f"{name}.bias": rand(n), f"{name}.running_mean": rand(n),
                      f"{name}.running_var": rand(n).abs() + 0.5, f"{name}.num_batches_tracked": torch.tensor(7)})
    widths = [in_channels, embed // 8, embed // 4, embed // 2, embed]
    for i, suffix in enumerate(["", "1", "2", "3"]):
        state[f"patch_embed.proj_conv{suffix}.weight"] = rand(widths[i + 1], widths[i], 3, 3)
        bn(f"patch_embed.proj_bn{suffix}", widths[i + 1])
    state["patch_embed.rpe_conv.weight"] = rand(embed, embed, 3, 3)
    bn("patch_embed.rpe_bn", embed)
    hidden = int(embed * mlp_ratio)
    for b in range(depths):
        for p in "qkv":
            state[f"block.{b}.attn.{p}_conv.weight"] = rand(embed, embed, 1)
            bn(f"block.{b}.attn.{p}_bn", embed)
        state[f"block.{b}.attn.proj_conv.weight"], state[f"block.{b}.attn.proj_conv.bias"] = rand(embed, embed, 1), rand(embed)
        bn(f"block.{b}.attn.proj_bn", embed)
        state[f"block.{b}.mlp.fc1_conv.weight"], state[f"block.{b}.mlp.fc1_conv.bias"] = rand(hidden, embed, 1, 1), rand(hidden)
        bn(f"block.{b}.mlp.fc1_bn", hidden)
        state[f"block.{b}.mlp.fc2_conv.weight"], state[f"block.{b}.mlp.fc2_conv.bias"] = rand(embed, hidden, 1, 1), rand(embed)
        bn(f"block.{b}.mlp.fc2_bn", embed)
        for norm in ("norm1", "norm2"):  # present in published checkpoints, unused by the forward pass
            state[f"block.{b}.{norm}.weight"], state[f"block.{b}.{norm}.bias"] = rand(embed), rand(embed)
    state["head.weight"], state["head.bias"] = rand(classes, embed), rand(classes)
    return state


def test_published_spikformer_state_dict_imports_exactly_and_a_wrong_one_names_its_keys(tmp_path):
    spec = model_spec("spikformer_imagenet_8_512", in_channels=1, img_size=32, num_classes=10, embed_dims=64,
                      num_heads=4, depths=2)
    kw = spec.kwargs
    state = reference_state_dict(kw["embed_dims"], kw["depths"], kw["mlp_ratio"], kw["num_classes"], kw["in_channels"])
    path = tmp_path / "published.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 300}, path)
    model = load_checkpoint(path, spec).build()
    assert torch.equal(model.block[1].attn.k_conv.weight, state["block.1.attn.k_conv.weight"])
    assert torch.equal(model.block[0].mlp.fc1_conv.bias, state["block.0.mlp.fc1_conv.bias"])
    # spikingjelly's own Spikformer computes something else (its stem pools before the LIF): refused
    with pytest.raises(AqsvitError, match=r"missing keys: .*; unexpected keys: block\.0\.attn"):
        load_checkpoint(path, model_spec("spikformer_digits"))
    del state["block.1.attn.q_conv.weight"]
    state["block.1.attn.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(AqsvitError, match=r"missing keys: block\.1\.attn\.q_conv\.weight; "
                                          r"unexpected keys: block\.1\.attn\.extra\.weight"):
        load_checkpoint(tmp_path / "wrong.pth", spec)
    other = reference_state_dict(2 * kw["embed_dims"], kw["depths"], kw["mlp_ratio"], kw["num_classes"],
                                 kw["in_channels"])
    torch.save(other, tmp_path / "wider.pth")
    with pytest.raises(AqsvitError, match=r"wrong shape: block\.0\.attn\.k_bn\.bias \(128,\)"):
        load_checkpoint(tmp_path / "wider.pth", spec)
