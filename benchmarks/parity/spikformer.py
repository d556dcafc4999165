"""Parity cases of Spikformer (ZK-Zhou/spikformer): its three layouts against aqsvit's own."""
from case import Case

REPO = "ZK-Zhou/spikformer"
_IMAGENET = ("ref.Spikformer(img_size_h={size}, img_size_w={size}, patch_size=16, embed_dims={dim}, num_heads={heads}, "
             "mlp_ratios=4, in_channels=3, num_classes=1000, qkv_bias=False, "
             "norm_layer=partial(nn.LayerNorm, eps=1e-6), depths={depth}, sr_ratios=1)")

CASES = [
    Case("Spikformer CIFAR-10", "4-384, T=4", REPO, ("cifar10/model.py",), "cifar10/model.py",
         "ref.Spikformer(img_size_h=32, img_size_w=32, patch_size=4, embed_dims=384, num_heads=12, mlp_ratios=4, "
         "in_channels=3, num_classes=10, qkv_bias=False, norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=4, "
         "sr_ratios=1, T=4)",
         "spikformer_cifar10_4_384", (3, 32, 32), images=8),
    Case("Spikformer ImageNet", "8-512, T=4", REPO, ("imagenet/model.py",), "imagenet/model.py",
         _IMAGENET.format(size=224, dim=512, heads=8, depth=8),
         "spikformer_imagenet_8_512", (3, 224, 224), images=2),
    Case("Spikformer ImageNet layout, small", "2-128, T=4", REPO, ("imagenet/model.py",), "imagenet/model.py",
         _IMAGENET.format(size=64, dim=128, heads=2, depth=2),
         "spikformer_imagenet_8_512", (3, 64, 64), images=8,
         kwargs={"img_size": 64, "embed_dims": 128, "num_heads": 2, "depths": 2}),
    Case("Spikformer CIFAR10-DVS", "2-256, 16 frames", REPO, ("cifar10dvs/model.py",), "cifar10dvs/model.py",
         "ref.Spikformer(patch_size=16, embed_dims=256, num_heads=16, mlp_ratios=4, in_channels=2, num_classes=10, "
         "qkv_bias=False, norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=2, sr_ratios=1)",
         "spikformer_cifar10dvs_2_256", (16, 2, 128, 128), images=8, save="torchvision", events=True),
]
