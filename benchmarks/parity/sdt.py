"""Parity cases of the Spike-driven Transformer (BICLab/Spike-Driven-Transformer) against aqsvit's own.

The reference model is built as its train.py builds it (timm's ``create_model("sdt", ...)`` with the
config's values; ``patch_size`` is timm's default, dropped there when None) and returns ``(logits, hook)``;
with ``TET`` (the CIFAR10-DVS config) the logits are per timestep and its validate() averages them.
"""
from case import Case

REPO = "BICLab/Spike-Driven-Transformer"
FILES = ("model", "module")
MODULE = "model/spikeformer.py"
PATCHES = (('backend="cupy"', 'backend="torch"'),)
_BUILD = ("ref.sdt(T={T}, num_heads=8, num_classes={classes}, pooling_stat='{pooling}', img_size_h={size}, "
          "img_size_w={size}, embed_dims={dim}, mlp_ratios=4, in_channels={ch}, qkv_bias=False, depths={depth}, "
          "sr_ratios=1, spike_mode='lif', dvs_mode={dvs}, TET={tet})")


def _build(size: int, dim: int, depth: int, *, T: int = 4, classes: int = 10, pooling: str = "0011", ch: int = 3,
           dvs: bool = False, tet: bool = False) -> str:
    return _BUILD.format(T=T, classes=classes, pooling=pooling, size=size, dim=dim, ch=ch, depth=depth, dvs=dvs,
                         tet=tet)


def _case(label: str, config: str, build: str, model: str, input_shape: tuple[int, ...], **kw) -> Case:
    return Case(label, config, REPO, FILES, MODULE, build, model, input_shape, patches=PATCHES,
                forward=kw.pop("forward", "model(x)[0]"), **kw)


CASES = [
    _case("SDT CIFAR-10", "2-512, T=4", _build(32, 512, 2), "sdt_cifar10_2_512", (3, 32, 32), images=8),
    _case("SDT ImageNet", "8-512, T=4", _build(224, 512, 8, classes=1000, pooling="1111"), "sdt_imagenet_8_512",
          (3, 224, 224), images=2),
    _case("SDT ImageNet layout, small", "2-128, T=4", _build(64, 128, 2, classes=1000, pooling="1111"),
          "sdt_imagenet_8_512", (3, 64, 64), images=8, kwargs={"img_size": 64, "embed_dims": 128, "depths": 2}),
    _case("SDT CIFAR10-DVS", "2-256, 10 frames, TET", _build(64, 256, 2, T=10, ch=2, dvs=True, tet=True),
          "sdt_cifar10dvs_2_256", (10, 2, 64, 64), images=8, events=True, forward="model(x)[0].mean(0)"),
    _case("SDT DVS128 Gesture", "2-256, 16 frames", _build(128, 256, 2, T=16, classes=11, pooling="0111", ch=2),
          "sdt_dvs128gesture_2_256", (16, 2, 128, 128), images=8, events=True),
]
