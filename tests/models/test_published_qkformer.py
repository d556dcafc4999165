"""aqsvit's faithful QKFormer against explicit computations and the published key layouts of
zhouchenlin2096/QKFormer (no reference code needed; benchmarks/parity/run.py compares with it)."""
from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from test_published_models import bn_keys, explicit_lif
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, load_checkpoint, model_info, model_spec
from aqsvit.quant.structure import structure

SMALL = {"embed_dims": 64, "num_heads": 2}


def published_keys(layout: str, dim: int, depths: int, ratio: int, classes: int, in_ch: int) -> dict[str, tuple]:
    """The published state_dict layout of zhouchenlin2096/QKFormer (names and shapes), written out by hand."""
    keys: dict[str, tuple] = {}

    def bn(name: str, c: int) -> None:
        bn_keys(keys, name, c)

    def conv(name: str, c_out: int, c_in: int, k: int = 3) -> None:
        keys[f"{name}_conv.weight"] = (c_out, c_in, k, k)
        bn(f"{name}_bn", c_out)

    def block(prefix: str, attn: str, d: int, parts: str, mlp: tuple[str, str]) -> None:
        for part in parts:
            keys[f"{prefix}.{attn}.{part}_conv.weight"] = (d, d, 1)
            bn(f"{prefix}.{attn}.{part}_bn", d)
        keys[f"{prefix}.{attn}.proj_conv.weight"], keys[f"{prefix}.{attn}.proj_conv.bias"] = (d, d, 1), (d,)
        bn(f"{prefix}.{attn}.proj_bn", d)
        for name, (c_in, c_out) in zip(mlp, ((d, d * ratio), (d * ratio, d))):
            keys[f"{prefix}.mlp.{name}_conv.weight"], keys[f"{prefix}.mlp.{name}_conv.bias"] = (c_out, c_in, 1, 1), (c_out,)
            bn(f"{prefix}.mlp.{name}_bn", c_out)

    if layout == "cifar":  # PatchEmbedInit(dim / 4): no pooling; then two PatchEmbeddingStage
        d = dim // 4
        conv("patch_embed1.proj", d // 2, in_ch), conv("patch_embed1.proj1", d, d // 2)
        conv("patch_embed1.proj_res", d, d // 2, 1)
        for i, d in ((2, dim // 2), (3, dim)):
            conv(f"patch_embed{i}.proj3", d, d // 2), conv(f"patch_embed{i}.proj4", d, d)
            conv(f"patch_embed{i}.proj_res", d, d // 2, 1)
        blocks = [("stage1.0", "tssa", dim // 4), ("stage2.0", "tssa", dim // 2)]
        blocks += [(f"stage3.{j}", "ssa", dim) for j in range(depths - 2)]
        mlp = ("mlp1", "mlp2")
    elif layout == "imagenet":
        d = dim // 4
        conv("patch_embed1.proj", d // 2, in_ch), conv("patch_embed1.proj1", d, d // 2)
        conv("patch_embed1.proj2", d, d), conv("patch_embed1.proj_res", d, d // 2, 1)
        for i, d in ((2, dim // 2), (3, dim)):
            conv(f"patch_embed{i}.proj3", d, d // 2), conv(f"patch_embed{i}.proj4", d, d)
            conv(f"patch_embed{i}.proj_res", d, d // 2, 1)
        blocks = [("stage1.0", "tssa", dim // 4), ("stage2.0", "tssa", dim // 2), ("stage2.1", "tssa", dim // 2)]
        blocks += [(f"stage3.{j}", "attn", dim) for j in range(depths - 3)]
        mlp = ("fc1", "fc2")
    else:  # dvs: PatchEmbedInit(dim / 2) with three pools, one PatchEmbeddingStage, one block each
        d = dim // 2
        for name, c_out, c_in in (("proj", d // 8, in_ch), ("proj1", d // 4, d // 8), ("proj2", d // 2, d // 4),
                                  ("proj3", d, d // 2)):
            conv(f"patch_embed1.{name}", c_out, c_in)
        conv("patch_embed1.proj_res", d, d // 4, 1)
        conv("patch_embed2.proj", dim, d), conv("patch_embed2.proj4", dim, dim), conv("patch_embed2.proj_res", dim, d, 1)
        blocks, mlp = [("stage1.0", "tssa", d), ("stage2.0", "ssa", dim)], ("mlp1", "mlp2")
    for prefix, attn, d in blocks:
        block(prefix, attn, d, "qk" if attn == "tssa" else "qkv", mlp)
    keys["head.weight"], keys["head.bias"] = (classes, dim), (classes,)
    return keys


def random_state(keys: dict[str, tuple]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.rand(shape, generator=gen) + 0.5
            for k, shape in keys.items()}


# (model, layout, depths, mlp ratio, classes, in channels, what its training script saves around the weights)
CASES = [("qkformer_cifar10_4_384", "cifar", 4, 4, 10, 3, "state_dict"),
         ("qkformer_cifar100_4_384", "cifar", 4, 4, 100, 3, "state_dict"),
         ("qkformer_imagenet_10_384", "imagenet", 5, 4, 1000, 3, "model"),
         ("qkformer_cifar10dvs_2_256", "dvs", 2, 1, 10, 2, "model"),
         ("qkformer_dvs128gesture_2_256", "dvs", 2, 4, 11, 2, "model")]


@pytest.mark.parametrize(("name", "layout", "depths", "ratio", "classes", "in_ch", "wrapper"), CASES)
def test_a_training_script_checkpoint_in_each_published_layout_maps_key_for_key(tmp_path, name, layout, depths,
                                                                                ratio, classes, in_ch, wrapper):
    state = random_state(published_keys(layout, 64, depths, ratio, classes, in_ch))
    torch.save({wrapper: state, "args": argparse.Namespace(model="QKFormer", time_step=4), "epoch": 199,
                "optimizer": {"state": {}, "param_groups": [{"lr": 6e-4}]}}, tmp_path / "ckpt.pth")
    spec = model_spec(name, depths=depths, **SMALL)
    ckpt = load_checkpoint(tmp_path / "ckpt.pth", spec)
    assert set(ckpt.state_dict) == set(state)
    model = ckpt.build()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_another_layout_is_refused_naming_its_keys(tmp_path):
    torch.save({"state_dict": random_state(published_keys("cifar", 64, 4, 4, 1000, 3))}, tmp_path / "c.pth")
    with pytest.raises(AqsvitError) as err:
        load_checkpoint(tmp_path / "c.pth", model_spec("qkformer_imagenet_10_384", depths=4, **SMALL))
    message = str(err.value)
    assert "\n" not in message
    assert "missing keys: patch_embed1.proj2_bn.bias" in message
    assert "unexpected keys: stage1.0.mlp.mlp1_bn.bias" in message


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights that keep spikes flowing: positive BN shifts, non-trivial running stats, non-zero biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) + 0.3)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
    return model.double().eval()


def explicit_bn(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """Eval BatchNorm over dim 1 of ``x``, written out."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def test_q_k_token_attention_matches_the_explicit_formula():
    """Per head: mask = LIF_0.5(sum over the head's channels of Q), out = LIF(BN(W_p (mask * K) + b_p))."""
    model = randomized(create_model("qkformer_imagenet_10_384", depths=3, **SMALL))
    attn = model.stage2[0].tssa  # width 32, 2 heads of 16 channels
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 2, 32, 10, generator=gen, dtype=torch.float64) < 0.4).double()  # spikes [T, B, C, N]
    with torch.no_grad():
        got = attn(x)
        functional.reset_net(model)

        def spikes(conv: nn.Module, bn: nn.Module, inp: torch.Tensor) -> torch.Tensor:
            y = torch.einsum("oc,tbcn->tbon", conv.weight[..., 0], inp)
            if conv.bias is not None:  # the projection's bias stays in front of its BN
                y = y + conv.bias[:, None]
            return explicit_lif(explicit_bn(y.flatten(0, 1), bn).reshape(y.shape))

        q = spikes(attn.q_conv, attn.q_bn, x).reshape(3, 2, 2, 16, 10)
        k = spikes(attn.k_conv, attn.k_bn, x).reshape(3, 2, 2, 16, 10)
        mask = explicit_lif(q.sum(3), threshold=0.5)  # [T, B, heads, N]: one bit per token and head
        want = spikes(attn.proj_conv, attn.proj_bn, torch.einsum("tbhn,tbhdn->tbhdn", mask, k).reshape(3, 2, 32, 10))
    assert 0 < mask.mean() < 1 and 0 < got.mean() < 1
    assert torch.equal(got, want)


def test_the_imagenet_patch_embedding_pools_before_its_lif_and_adds_the_strided_shortcut():
    model = randomized(create_model("qkformer_imagenet_10_384", depths=3, **SMALL))
    emb = model.patch_embed1
    x = torch.randn(4, 2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        got = emb(x)
        functional.reset_net(model)

        def stage(inp: torch.Tensor, prefix: str, pooled: bool, lif_first: bool = False, stride: int = 1):
            conv, bn = getattr(emb, f"{prefix}_conv"), getattr(emb, f"{prefix}_bn")
            y = explicit_bn(F.conv2d(inp.flatten(0, 1), conv.weight, stride=stride, padding=conv.padding), bn)
            if pooled and lif_first:  # Spikformer's order
                pooled_spikes = F.max_pool2d(explicit_lif(y.reshape(4, 2, *y.shape[1:])).flatten(0, 1), 3, 2, 1)
                return pooled_spikes.reshape(4, 2, *pooled_spikes.shape[1:])
            if pooled:
                y = F.max_pool2d(y, 3, 2, 1)
            return explicit_lif(y.reshape(4, 2, *y.shape[1:]))

        def embed(lif_first: bool) -> torch.Tensor:
            s1 = stage(x, "proj", True, lif_first)                  # [T, B, 8, 16, 16]
            s2 = stage(stage(s1, "proj1", True, lif_first), "proj2", False)
            return s2 + stage(s1, "proj_res", False, stride=2)     # conv1x1 / 2 of the first stage's spikes

        want, other = embed(False), embed(True)
    assert got.shape == (4, 2, 16, 8, 8)
    assert torch.equal(got, want)
    assert set(got.unique().tolist()) == {0.0, 1.0, 2.0}  # two spike maps added
    assert not torch.equal(got, other)  # the LIF-then-pool order computes something else


def test_the_last_stage_projection_lif_chains_the_images_of_a_batch():
    """The published SSA runs its output-projection LIF over [T * B]: image 1's membrane starts from
    image 0's, so a prediction depends on its batch."""
    model = randomized(create_model("qkformer_cifar10_4_384", depths=3, **SMALL))
    attn = model.stage3[0].ssa
    x = (torch.rand(3, 2, 64, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64) < 0.5).double()
    with torch.no_grad():
        hooked = []
        attn.proj_bn.register_forward_hook(lambda _m, _i, out: hooked.append(out))
        got = attn(x)
        functional.reset_net(model)
        y = hooked[0].reshape(3, 2, 64, 16)
        assert torch.equal(got, explicit_lif(y.flatten(0, 1)).reshape(y.shape))
        assert not torch.equal(got, explicit_lif(y))  # a per-image LIF computes something else
        images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        both = model(images)
        functional.reset_net(model)
        alone = model(images[1:])
    assert not torch.equal(both[1:], alone)


@pytest.mark.parametrize(("name", "blocks"), [("qkformer_cifar10_4_384", ["stage1.0", "stage2.0", "stage3.0", "stage3.1"]),
                                              ("qkformer_imagenet_10_384", ["stage1.0", "stage2.0", "stage2.1"]
                                               + [f"stage3.{j}" for j in range(7)]),
                                              ("qkformer_cifar10dvs_2_256", ["stage1.0", "stage2.0"])])
def test_every_stage_block_is_a_search_block_and_embeddings_group_by_stage(name, blocks):
    model = create_model(name, **SMALL)
    found = structure(model)
    assert list(found.blocks) == blocks
    assert found.block_of("patch_embed2.proj_res_conv") == "patch_embed2"
    assert found.block_of(f"{blocks[-1]}.mlp.{model.layout.mlp_names[1]}_conv") == blocks[-1]


def test_registry_names_the_reference_and_its_preprocessing():
    for name in ("qkformer_cifar10_4_384", "qkformer_imagenet_10_768", "qkformer_dvs128gesture_2_256"):
        assert model_info(name).reference.startswith("zhouchenlin2096/QKFormer@c2a00e8e")
    assert model_info("qkformer_cifar100_4_384").preprocess == "cifar10"  # its cifar100.yml's mean and std
    assert (model_info("qkformer_imagenet_10_512").preprocess, model_info("qkformer_imagenet_10_512").crop_pct) \
        == ("imagenet", 0.875)
    assert model_info("qkformer_cifar10dvs_2_256").preprocess == "none"
    assert model_info("qkformer_digits").reference is None  # spikingjelly's own stays
    sizes = {n: sum(p.numel() for p in create_model(n).parameters())
             for n in ("qkformer_imagenet_10_384", "qkformer_imagenet_10_512", "qkformer_imagenet_10_768")}
    assert [round(v / 1e6, 2) for v in sizes.values()] == [16.47, 29.08, 64.96]  # the README's parameter counts
