"""aqsvit's faithful Spike-driven Transformer against explicit computations and the published key
layout (no reference code needed; benchmarks/parity/run.py compares with the reference code itself)."""
from __future__ import annotations

import argparse

import pytest
import torch
from spikingjelly.activation_based import functional
from test_published_models import bn_keys, explicit_lif, random_state, stem_keys
from torch import nn
from torch.nn import functional as F

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, load_checkpoint, model_info, model_spec
from aqsvit.quant import LayerQuantizer

SMALL = {"embed_dims": 32, "num_heads": 2, "depths": 2}
NAMES = ("sdt_cifar10_2_512", "sdt_imagenet_8_512", "sdt_cifar10dvs_2_256", "sdt_dvs128gesture_2_256")


def published_keys(dim: int, depths: int, heads: int, hidden: int, classes: int, in_ch: int) -> dict[str, tuple]:
    """The published state_dict layout of BICLab/Spike-Driven-Transformer (names and shapes), by hand."""
    keys: dict[str, tuple] = {}

    def bn(name: str, c: int) -> None:
        bn_keys(keys, name, c)

    stem_keys(keys, in_ch, dim)
    for b in range(depths):
        p = f"block.{b}"
        for part in ("q", "k", "v", "proj"):
            keys[f"{p}.attn.{part}_conv.weight"] = (dim, dim, 1, 1)
            bn(f"{p}.attn.{part}_bn", dim)
        keys[f"{p}.attn.proj_conv.bias"] = (dim,)
        keys[f"{p}.attn.talking_heads.weight"] = (heads, heads, 1)  # built, never used by the forward
        for fc, (c_in, c_out) in (("fc1", (dim, hidden)), ("fc2", (hidden, dim))):
            keys[f"{p}.mlp.{fc}_conv.weight"] = (c_out, c_in, 1, 1)
            keys[f"{p}.mlp.{fc}_conv.bias"] = (c_out,)
            bn(f"{p}.mlp.{fc}_bn", c_out)
    keys["head.weight"], keys["head.bias"] = (classes, dim), (classes,)
    return keys


@pytest.mark.parametrize("name", NAMES)
def test_a_training_script_checkpoint_maps_key_for_key(tmp_path, name):
    spec = model_spec(name, **SMALL)
    keys = published_keys(32, 2, 2, 128, spec.kwargs["num_classes"], spec.kwargs["in_channels"])
    state = random_state(keys)
    # timm's CheckpointSaver, as the published train.py saves (its argparse.Namespace included)
    payload = {"epoch": 299, "arch": "sdt", "state_dict": state, "version": 2, "metric": 77.1,
               "args": argparse.Namespace(model="sdt", pooling_stat="1111", time_steps=4),
               "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}}
    torch.save(payload, tmp_path / "ckpt.pth.tar")
    ckpt = load_checkpoint(tmp_path / "ckpt.pth.tar", spec)
    assert set(ckpt.state_dict) == {k for k in keys if "talking_heads" not in k}
    model = ckpt.build()  # no folding: every published tensor, the conv biases too, lands as it is
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_another_layout_is_one_line_naming_the_keys(tmp_path):
    keys = published_keys(32, 2, 2, 128, 10, 3)
    del keys["block.1.mlp.fc2_conv.bias"]
    keys["block.0.attn.q_conv.weight"] = (32, 32)
    keys["block.0.attn.q_linear.weight"] = (32, 32)
    torch.save({"state_dict": random_state(keys)}, tmp_path / "bad.pth")
    with pytest.raises(AqsvitError) as err:
        load_checkpoint(tmp_path / "bad.pth", model_spec("sdt_cifar10_2_512", **SMALL))
    message = str(err.value)
    assert "\n" not in message
    assert "missing keys: block.1.mlp.fc2_conv.bias" in message
    assert "unexpected keys: block.0.attn.q_linear.weight" in message
    assert "wrong shape: block.0.attn.q_conv.weight (32, 32) (model: (32, 32, 1, 1))" in message


def test_registry_names_the_reference_its_preset_and_crop():
    for name in NAMES:
        assert model_info(name).reference.startswith("BICLab/Spike-Driven-Transformer@3faa822")
    assert model_info("sdt_imagenet_8_768").preprocess == "imagenet"
    assert model_info("sdt_imagenet_8_768").crop_pct == 0.95
    assert model_info("sdt_cifar100_2_256").preprocess == "cifar100"
    assert model_info("sdt_digits").reference is None  # spikingjelly's own
    # the benchmark row: the published cifar layout, reduced to 1-channel 16x16 digits, no normalisation
    assert model_info("sdt_digits16").reference.endswith("model/spikeformer.py")
    assert model_info("sdt_digits16").preprocess == "none"
    assert model_spec("sdt_digits16").input_shape == (1, 16, 16)
    model = create_model("sdt_digits16")
    assert len(LayerQuantizer(model).layers) == 30 and sum(p.numel() for p in model.parameters()) == 264_898


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BNs and biases so that every path of the computation shows in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 1.5)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
    return model.double().eval()


def bn(module: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Eval BatchNorm over axis 2 of ``[T, B, C, ...]``, written out."""
    shape = (-1,) + (1,) * (x.ndim - 3)
    return ((x - module.running_mean.view(shape)) / torch.sqrt(module.running_var.view(shape) + module.eps)
            * module.weight.view(shape) + module.bias.view(shape))


def pw(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv over ``[T, B, C, H, W]``, written out."""
    out = torch.einsum("oc,tbchw->tbohw", conv.weight[:, :, 0, 0], x)
    return out + conv.bias.view(-1, 1, 1) if conv.bias is not None else out


def erode(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 max over the last two axes (the published dvs_mode "Erode")."""
    return F.max_pool2d(x.reshape(-1, 1, *x.shape[-2:]), 3, 1, 1).reshape(x.shape)


@pytest.mark.parametrize("name", ["sdt_cifar10_2_512", "sdt_cifar10dvs_2_256"])
def test_block_is_membrane_shortcut_sdsa_then_mlp(name):
    """x1 = x + BN(proj(Q * LIF_0.5(sum_N K * V))) with Q, K, V = LIF(BN(W LIF(x))) per head, then
    x2 = x1 + BN(fc2(LIF(BN(fc1(LIF(x1)))))): the sums stay before the neurons (real-valued stream)."""
    model = randomized(create_model(name, **SMALL))
    block = model.block[0]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 32, 2, 4, generator=gen, dtype=torch.float64) * 2 + 0.5  # membrane inputs, 8 tokens
    dvs = name == "sdt_cifar10dvs_2_256"
    with torch.no_grad():
        got = block(x)
        functional.reset_net(model)
        a, m = block.attn, block.mlp
        s = explicit_lif(x)
        q, k, v = (explicit_lif(bn(getattr(a, f"{p}_bn"), pw(getattr(a, f"{p}_conv"), s))) for p in "qkv")
        if dvs:
            k, v = erode(k), erode(v)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [T, B, h, N, d], channel c = h * d + i
            return t.flatten(3).reshape(3, 2, 2, 16, 8).transpose(-1, -2)

        q, k, v = heads(q), heads(k), heads(v)
        kv = k * v
        if dvs:
            kv = erode(kv)
        mask = explicit_lif(kv.sum(-2, keepdim=True), threshold=0.5)
        y = q * mask
        if dvs:
            y = erode(y)
        y = y.transpose(-1, -2).reshape(x.shape)
        x1 = x + bn(a.proj_bn, pw(a.proj_conv, y))
        h = bn(m.fc1_bn, pw(m.fc1_conv, explicit_lif(x1)))
        want = x1 + bn(m.fc2_bn, pw(m.fc2_conv, explicit_lif(h)))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert 0 < mask.mean() < 1 and not torch.equal(got, x)


@pytest.mark.parametrize(("name", "pooled"), [("sdt_imagenet_8_512", (1, 1, 1, 1)),
                                              ("sdt_dvs128gesture_2_256", (0, 1, 1, 1))])
def test_stem_pools_its_last_stage_before_the_lif_and_adds_the_embedding_to_the_membrane(name, pooled):
    """conv-BN-LIF-[pool] three times, then conv-BN-[pool] = m; the stem returns m + BN(rpe(LIF(m)))."""
    model = randomized(create_model(name, **SMALL))
    sps = model.patch_embed
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, model.patch_embed.proj_conv.in_channels, 32, 32, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        got = sps(x)
        functional.reset_net(model)

        def per_step(fn, t):
            y = fn(t.flatten(0, 1))
            return y.reshape(*t.shape[:2], *y.shape[1:])

        def pool(t):
            return per_step(lambda y: F.max_pool2d(y, 3, 2, 1), t)

        t = x
        for i, s in enumerate(("", "1", "2")):
            t = explicit_lif(bn(getattr(sps, f"proj_bn{s}"), per_step(getattr(sps, f"proj_conv{s}"), t)))
            t = pool(t) if pooled[i] else t
        membrane = bn(sps.proj_bn3, per_step(sps.proj_conv3, t))
        membrane = pool(membrane) if pooled[3] else membrane
        want = membrane + bn(sps.rpe_bn, per_step(sps.rpe_conv, explicit_lif(membrane)))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert got.shape[-1] == 32 // 2 ** sum(pooled)


def test_head_fires_on_token_averages_then_averages_the_scores_over_time():
    model = randomized(create_model("sdt_cifar10_2_512", **SMALL))
    blocks_out = []
    model.block[-1].register_forward_hook(lambda _m, _i, out: blocks_out.append(out))
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        feats = explicit_lif(blocks_out[0].flatten(3).mean(3))  # [T, B, D]
        want = (feats @ model.head.weight.T + model.head.bias).mean(0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
