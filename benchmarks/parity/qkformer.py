"""Parity cases of QKFormer (zhouchenlin2096/QKFormer): its cifar, imagenet and dvs layouts against aqsvit's own."""
from case import Case

REPO = "zhouchenlin2096/QKFormer"
_CIFAR = ("ref.QKFormer(img_size_h=32, img_size_w=32, patch_size=4, embed_dims=384, num_heads=8, mlp_ratios=4, "
          "in_channels=3, num_classes={classes}, qkv_bias=False, depths=4, sr_ratios=1, T=4)")
# what imagenet/qkformer.py's QKFormer_10_* builders pass, at another size
_IMAGENET = ("ref.hierarchical_spiking_transformer(T=4, img_size_h={size}, img_size_w={size}, patch_size=16, "
             "embed_dims={dim}, num_heads={heads}, mlp_ratios=4, in_channels=3, num_classes=1000, qkv_bias=False, "
             "norm_layer=partial(nn.LayerNorm, eps=1e-6), depths={depth}, sr_ratios=1)")

CASES = [
    Case("QKFormer CIFAR-10", "HST-4-384, T=4", REPO, ("cifar10/model.py",), "cifar10/model.py",
         _CIFAR.format(classes=10), "qkformer_cifar10_4_384", (3, 32, 32), images=8),
    Case("QKFormer CIFAR-100", "HST-4-384, T=4", REPO, ("cifar100/model.py",), "cifar100/model.py",
         _CIFAR.format(classes=100), "qkformer_cifar100_4_384", (3, 32, 32), images=8),
    Case("QKFormer ImageNet", "HST-10-384, T=4", REPO, ("imagenet/qkformer.py",), "imagenet/qkformer.py",
         "ref.QKFormer_10_384(T=4)", "qkformer_imagenet_10_384", (3, 224, 224), images=2, save="mae"),
    Case("QKFormer ImageNet layout, small", "HST-4-128, T=4", REPO, ("imagenet/qkformer.py",), "imagenet/qkformer.py",
         _IMAGENET.format(size=64, dim=128, heads=2, depth=4), "qkformer_imagenet_10_384", (3, 64, 64), images=8,
         kwargs={"img_size": 64, "embed_dims": 128, "num_heads": 2, "depths": 4}, save="mae"),
    Case("QKFormer CIFAR10-DVS", "HST-2-256, 16 frames", REPO, ("cifar10-dvs/model.py",), "cifar10-dvs/model.py",
         "ref.QKFormer()", "qkformer_cifar10dvs_2_256", (16, 2, 128, 128), images=8, save="torchvision", events=True),
    Case("QKFormer DVS128 Gesture", "HST-2-256, 16 frames", REPO, ("dvs128-gesture/model.py",),
         "dvs128-gesture/model.py", "ref.QKFormer()", "qkformer_dvs128gesture_2_256", (16, 2, 128, 128), images=8,
         save="torchvision", events=True),
]
