"""aqsvit's faithful Spikformer against explicit computations and published key layouts (no
reference code needed; benchmarks/parity/run.py compares with the reference code itself)."""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, load_checkpoint, model_spec
from aqsvit.models.checkpoint import load_weights

SMALL = {"embed_dims": 32, "num_heads": 2, "depths": 2}


def bn_keys(keys: dict[str, tuple], name: str, c: int) -> None:
    """A BatchNorm's five state_dict entries."""
    keys.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                 f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})


def stem_keys(keys: dict[str, tuple], in_ch: int, dim: int) -> None:
    """The four-conv patch embedding plus its relative position conv (Spikformer and SDT share it)."""
    widths = [in_ch, dim // 8, dim // 4, dim // 2, dim]
    for i, s in enumerate(("", "1", "2", "3")):
        keys[f"patch_embed.proj_conv{s}.weight"] = (widths[i + 1], widths[i], 3, 3)
        bn_keys(keys, f"patch_embed.proj_bn{s}", widths[i + 1])
    keys["patch_embed.rpe_conv.weight"] = (dim, dim, 3, 3)
    bn_keys(keys, "patch_embed.rpe_bn", dim)


def published_keys(layout: str, dim: int, depths: int, hidden: int, classes: int, in_ch: int) -> dict[str, tuple]:
    """The published state_dict layout of ZK-Zhou/spikformer (names and shapes), written out by hand."""
    keys: dict[str, tuple] = {}

    def bn(name: str, c: int) -> None:
        bn_keys(keys, name, c)

    stem_keys(keys, in_ch, dim)
    kind = "linear" if layout == "cifar10" else "conv"
    for b in range(depths):
        p = f"block.{b}"
        keys.update({f"{p}.norm1.weight": (dim,), f"{p}.norm1.bias": (dim,), f"{p}.norm2.weight": (dim,),
                     f"{p}.norm2.bias": (dim,)})
        for part in ("q", "k", "v", "proj"):
            keys[f"{p}.attn.{part}_{kind}.weight"] = (dim, dim) if kind == "linear" else (dim, dim, 1)
            if kind == "linear" or part == "proj":
                keys[f"{p}.attn.{part}_{kind}.bias"] = (dim,)
            bn(f"{p}.attn.{part}_bn", dim)
        for fc, (c_in, c_out) in (("fc1", (dim, hidden)), ("fc2", (hidden, dim))):
            kernel = {"cifar10": (), "imagenet": (1, 1), "cifar10dvs": (1,)}[layout]
            keys[f"{p}.mlp.{fc}_{kind}.weight"] = (c_out, c_in, *kernel)
            keys[f"{p}.mlp.{fc}_{kind}.bias"] = (c_out,)
            bn(f"{p}.mlp.{fc}_bn", c_out)
    keys["head.weight"], keys["head.bias"] = (classes, dim), (classes,)
    if layout == "cifar10dvs":
        keys.update({"pos_embed": (1, 64, dim), "norm.weight": (dim,), "norm.bias": (dim,)})
    return keys


def random_state(keys: dict[str, tuple], dtype=torch.float32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked")
                else torch.rand(shape, generator=gen, dtype=dtype) + 0.5) for k, shape in keys.items()}


CASES = [("spikformer_cifar10_4_384", "cifar10", 10, 3), ("spikformer_imagenet_8_512", "imagenet", 1000, 3),
         ("spikformer_cifar10dvs_2_256", "cifar10dvs", 10, 2)]


@pytest.mark.parametrize(("name", "layout", "classes", "in_ch"), CASES)
def test_a_training_script_checkpoint_in_each_published_layout_maps_key_for_key(tmp_path, name, layout, classes,
                                                                                in_ch):
    keys = published_keys(layout, 32, 2, 128, classes, in_ch)
    state = random_state(keys)
    args = argparse.Namespace(model="spikformer", lr=5e-4, mean=[0.5, 0.5])
    payload = {"model" if layout == "cifar10dvs" else "state_dict": {f"module.{k}": v for k, v in state.items()},
               "args": args, "epoch": 299, "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4}]}}
    torch.save(payload, tmp_path / "ckpt.pth")
    spec = model_spec(name, **SMALL)
    ckpt = load_checkpoint(tmp_path / "ckpt.pth", spec)
    unused = {k for k in keys if "norm" in k or k == "pos_embed"}
    assert set(ckpt.state_dict) == set(keys) - unused
    for k, v in ckpt.state_dict.items():
        assert torch.equal(v, state[k]), k
    model = ckpt.build()  # the q/k/v (cifar10: biased Linear) weights, biases and BNs land as published
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_cifar10_linear_biases_take_part_in_the_projection():
    """The cifar10 layout keeps Linear(+bias) -> BN: BN(Wx + b) computed explicitly, per token."""
    model = create_model("spikformer_cifar10_4_384", **SMALL).eval()
    attn = model.block[0].attn
    with torch.no_grad():
        for m in (attn.q_linear, attn.q_bn):
            for p in m.parameters():
                p.uniform_(0.5, 1.5)
        attn.q_bn.running_mean.uniform_(-1, 1)
        attn.q_bn.running_var.uniform_(0.5, 2)
        x = torch.rand(2, 3, 32, 5)  # [T, B, C, N]
        from aqsvit.models.published.layers import pointwise
        got = pointwise(attn.q_linear, attn.q_bn, x)
        bn = attn.q_bn
        lin = torch.einsum("oc,tbcn->tbon", attn.q_linear.weight, x) + attn.q_linear.bias[:, None]
        want = ((lin - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
                * bn.weight[:, None] + bn.bias[:, None])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def explicit_lif(x: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """tau = 2, hard reset to 0, over [T, ...]: H = V + (X - V) / 2, spike at H >= threshold."""
    v, out = torch.zeros_like(x[0]), []
    for xt in x:
        h = v + (xt - v) / 2
        s = (h >= threshold).to(x.dtype)
        out.append(s)
        v = h * (1 - s)
    return torch.stack(out)


@pytest.mark.parametrize(("name", "pooled"), [("spikformer_imagenet_8_512", (1, 1, 1, 1)),
                                              ("spikformer_cifar10_4_384", (0, 0, 1, 1))])
def test_the_stem_pools_after_its_lif(name, pooled):
    model = create_model(name, **SMALL).double().eval()
    sps = model.patch_embed
    with torch.no_grad():
        for m in sps.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.bias.uniform_(0.5, 1.5)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 3, 32, 32, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        got = sps(x)
        functional.reset_net(model)
        pool = nn.MaxPool2d(3, 2, 1)

        def stage(inp: torch.Tensor, i: int, s: str, pool_first: bool) -> torch.Tensor:
            y = getattr(sps, f"proj_bn{s}")(getattr(sps, f"proj_conv{s}")(inp.flatten(0, 1)))
            if pooled[i] and pool_first:  # spikingjelly 2.0's order
                y = pool(y)
            spikes = explicit_lif(y.reshape(4, 2, *y.shape[1:]))
            if pooled[i] and not pool_first:  # the published order
                pooled_spikes = pool(spikes.flatten(0, 1))
                spikes = pooled_spikes.reshape(4, 2, *pooled_spikes.shape[1:])
            return spikes

        def rpe(t: torch.Tensor) -> torch.Tensor:
            return (t + explicit_lif(sps.rpe_bn(sps.rpe_conv(t.flatten(0, 1))).reshape(t.shape))).flatten(3)

        want, other = x, x
        for i, s in enumerate(("", "1", "2", "3")):
            want, other = stage(want, i, s, False), stage(other, i, s, True)
        want, other = rpe(want), rpe(other)
    assert torch.equal(got, want)
    assert not torch.equal(got, other)  # spikingjelly 2.0's pool-then-LIF stem computes something else


@pytest.mark.parametrize(("name", "scale"), [("spikformer_cifar10_4_384", 0.125), ("spikformer_imagenet_8_512", 0.125),
                                             ("spikformer_cifar10dvs_2_256", 0.25)])
def test_self_attention_matches_the_explicit_formula(name, scale):
    """SSA = proj(LIF_0.5(Q K^T V * scale)), Q/K/V = LIF(BN(layer(x))), per head."""
    model = create_model(name, **SMALL).double().eval()
    attn = model.block[0].attn
    assert attn.scale == scale
    from aqsvit.models.published.layers import pointwise
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 2, 32, 6, generator=gen, dtype=torch.float64) < 0.4).double()  # spikes [T, B, C, N]
    with torch.no_grad():
        for bn in (attn.q_bn, attn.k_bn, attn.v_bn, attn.proj_bn):
            bn.bias.uniform_(0.5, 1.5)
        got = attn(x)
        functional.reset_net(model)
        kind = "linear" if "cifar10_" in name else "conv"
        qkv = [explicit_lif(pointwise(getattr(attn, f"{p}_{kind}"), getattr(attn, f"{p}_bn"), x)) for p in "qkv"]
        q, k, v = (t.reshape(3, 2, 2, 16, 6) for t in qkv)  # [T, B, heads, d, N]
        y = torch.einsum("tbhdn,tbhdm,tbhem->tbhen", q, k, v) * scale
        y = explicit_lif(y.reshape(3, 2, 32, 6), threshold=0.5)
        want = explicit_lif(pointwise(getattr(attn, f"proj_{kind}"), attn.proj_bn, y))
    assert torch.equal(got, want)


def test_the_head_averages_tokens_then_timesteps():
    model = create_model("spikformer_cifar10dvs_2_256", **SMALL).eval()
    x = torch.randint(0, 2, (2, 16, 2, 128, 128)).float()
    feats = []
    model.head.register_forward_hook(lambda _m, inp, _o: feats.append(inp[0]))
    blocks_out = []
    model.block[-1].register_forward_hook(lambda _m, _i, out: blocks_out.append(out))
    with torch.no_grad():
        model(x)
    torch.testing.assert_close(feats[0], blocks_out[0].mean(3).mean(0))


def bad(tmp_path, payload) -> str:
    path = tmp_path / "bad.pth"
    torch.save(payload, path)
    with pytest.raises(AqsvitError) as err:
        load_checkpoint(path, model_spec("spikformer_cifar10_4_384", **SMALL))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_published_checkpoints_are_one_line(tmp_path):
    imagenet = random_state(published_keys("imagenet", 32, 2, 128, 10, 3))
    message = bad(tmp_path, {"state_dict": imagenet})
    assert "missing keys: block.0.attn.k_linear.bias" in message and "unexpected keys: block.0.attn.k_conv.weight" in message
    cifar = random_state(published_keys("cifar10", 32, 2, 128, 10, 3))
    cifar["head.weight"] = torch.zeros(100, 32)
    assert "wrong shape: head.weight (100, 32) (model: (10, 32))" in bad(tmp_path, {"state_dict": cifar})
    assert "Unsupported global" in bad(tmp_path, {"state_dict": cifar, "when": datetime.date(2024, 1, 1)})
    assert "neither an aqsvit checkpoint nor a state_dict" in bad(tmp_path, {"args": argparse.Namespace(a=1)})
    good = tmp_path / "good.pth"
    torch.save({"state_dict": random_state(published_keys("cifar10", 32, 2, 128, 10, 3))}, good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AqsvitError, match="truncated or another format|not torch.save's zip format"):
        load_checkpoint(tmp_path / "cut.pth", model_spec("spikformer_cifar10_4_384", **SMALL))


def test_float64_checkpoint_stays_exact_in_a_float64_model(tmp_path):
    keys = published_keys("cifar10", 32, 2, 128, 10, 3)
    state = random_state(keys, torch.float64)
    torch.save({"state_dict": state}, tmp_path / "c.pth")
    spec = model_spec("spikformer_cifar10_4_384", **SMALL)
    model = create_model(spec).double()
    load_weights(model, load_checkpoint(tmp_path / "c.pth", spec).state_dict, source="test")
    assert torch.equal(model.head.weight, state["head.weight"])


@pytest.mark.slow
def test_cli_takes_a_training_script_checkpoint_and_builder_kwargs_without_plus(tmp_path):
    keys = published_keys("cifar10", 32, 1, 64, 10, 3)
    torch.save({"state_dict": random_state(keys), "args": argparse.Namespace(lr=1.0), "epoch": 3},
               tmp_path / "ckpt.pth")
    common = [sys.executable, "-m", "aqsvit.cli", "train", "model=spikformer_cifar10_2_384",
              "model.kwargs.embed_dims=32", "model.kwargs.num_heads=2", "model.kwargs.depths=1",
              "model.kwargs.mlp_ratio=2.0", "progress=false"]
    ok = subprocess.run([*common, f"checkpoint={tmp_path / 'ckpt.pth'}"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert "accuracy" in ok.stdout.lower()
    search_args = [*common[:3], "search", *common[4:], f"checkpoint={tmp_path / 'ckpt.pth'}",
                   f"storage.url=sqlite:///{tmp_path / 's.db'}"]
    at_chance = subprocess.run(search_args, capture_output=True, text=True, timeout=600)
    # random weights: train reports them, a search refuses them in one line and creates no study
    assert at_chance.returncode == 2 and "at chance" in at_chance.stderr, at_chance.stderr
    assert len(at_chance.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.db").exists()
    (tmp_path / "cut.pth").write_bytes((tmp_path / "ckpt.pth").read_bytes()[:1000])
    cut = subprocess.run([*common, f"checkpoint={tmp_path / 'cut.pth'}"], capture_output=True, text=True, timeout=600)
    assert cut.returncode == 2 and len(cut.stderr.strip().splitlines()) == 1, cut.stderr
