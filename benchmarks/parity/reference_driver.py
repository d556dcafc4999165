"""Runs inside the throwaway venv (the reference's own old dependencies): builds the reference model,
gives it random weights, saves it as its training script does, and writes its logits.

Usage: python reference_driver.py job.json. The job names the fetched source folder, the module,
the build expression, the inputs file and where to write. Only the standard library, torch and the
reference's own imports are used here: aqsvit is not importable in that venv.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from functools import partial

import torch
from torch import nn


def shim_torchvision() -> None:
    """timm imports torchvision, whose compiled ops do not load beside this CPU torch build; its
    meta registrations of detection ops (NMS, RoI align) take no part in any eval forward here."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


def reset(model: nn.Module) -> None:
    """Reset every neuron's state (spikingjelly's reset_net, whichever API the reference uses)."""
    try:
        from spikingjelly.clock_driven import functional
    except ImportError:
        from spikingjelly.activation_based import functional
    functional.reset_net(model)


@torch.no_grad()
def randomize(model: nn.Module, generator: torch.Generator) -> None:
    """Random weights that keep spikes flowing: He-scaled conv/linear weights, non-zero biases, and
    BatchNorms with non-trivial running statistics and affine parameters; everything else random too."""
    def normal(t: torch.Tensor, mean: float, std: float) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std + mean)

    def uniform(t: torch.Tensor, low: float, high: float) -> None:
        t.copy_(torch.rand(t.shape, generator=generator) * (high - low) + low)

    done = set()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            uniform(module.weight, 0.5, 1.5)
            normal(module.bias, 0.8, 0.8)
            normal(module.running_mean, 0.0, 0.5)
            uniform(module.running_var, 0.5, 2.0)
            module.num_batches_tracked.fill_(1000)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            normal(module.weight, 0.0, (2.0 / module.weight[0].numel()) ** 0.5)
            if module.bias is not None:  # non-zero: |b| in [0.05, 0.5], random sign
                sign = torch.randint(0, 2, module.bias.shape, generator=generator) * 2 - 1
                module.bias.copy_(sign * (torch.rand(module.bias.shape, generator=generator) * 0.45 + 0.05))
        else:
            continue
        done.update(id(t) for t in module.parameters(recurse=False))
    for param in model.parameters():
        if id(param) not in done:
            normal(param, 0.0, 0.1)


@torch.no_grad()
def spread_head(model: nn.Module, x: torch.Tensor, job: dict) -> None:
    """Rescale the classifier so that the inputs' predictions differ: random weights make every
    image's averaged spike features nearly alike, and a random head then predicts one class for all
    of them (argmax agreement would prove nothing). The head is scaled to unit logit spread over the
    inputs and its (still non-zero) bias centres them. A head run per timestep (``[T, B, D]``, its
    scores averaged over T after it) is linear, so each input's features are their mean over T."""
    head = dict(model.named_modules())[job["head"]]
    seen = []
    handle = head.register_forward_hook(lambda _m, inputs, _out: seen.append(
        inputs[0] if inputs[0].ndim == 2 else inputs[0].mean(0)))
    for chunk in x.split(job["batch"]):
        eval(job["forward"], {"model": model, "x": chunk})  # noqa: S307
        reset(model)
    handle.remove()
    feats = torch.cat(seen)
    spread = ((feats - feats.mean(0)) @ head.weight.T).std()
    head.weight /= spread
    head.bias.copy_(-(feats.mean(0) @ head.weight.T) + head.bias * 0.1)


def training_script_dict(kind: str, state: dict, model: nn.Module) -> dict:
    """What the reference's training script saves around the state_dict."""
    args = argparse.Namespace(model="spikformer", epochs=300, lr=5e-4, batch_size=64, mean=[0.5, 0.5, 0.5],
                              amp=True, output="", resume="", seed=42, T=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4).state_dict()
    if kind == "timm":  # timm's CheckpointSaver (train.py of cifar10 and imagenet)
        return {"epoch": 299, "arch": "spikformer", "state_dict": state, "optimizer": optimizer, "version": 2,
                "args": args, "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0}, "metric": 95.1}
    if kind == "torchvision":  # cifar10dvs/train.py
        return {"model": state, "optimizer": optimizer, "lr_scheduler": {"last_epoch": 10, "base_lrs": [5e-4]},
                "epoch": 10, "args": args, "max_test_acc1": 80.2, "test_acc5_at_max_test_acc1": 98.0}
    if kind == "mae":  # MAE-style misc.save_model (QKFormer's imagenet/train.py)
        return {"model": state, "optimizer": optimizer, "epoch": 199, "args": args,
                "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                           "_growth_tracker": 0}}
    raise ValueError(f"unknown checkpoint kind {kind}")


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    shim_torchvision()
    sys.path[:0] = [job["module_dir"], job["source_root"]]  # the module's own folder, and the repository's root
    spec = importlib.util.spec_from_file_location("reference_model", job["module_file"])
    ref = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ref  # timm's register_model looks the module up
    spec.loader.exec_module(ref)
    generator = torch.Generator().manual_seed(job["seed"])
    torch.manual_seed(job["seed"])
    model = eval(job["build"], {"ref": ref, "torch": torch, "nn": nn, "partial": partial})  # noqa: S307
    randomize(model, generator)
    model.eval()
    x = torch.load(job["inputs"], weights_only=True)
    model.double()
    spread_head(model, x.double(), job)
    logits = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        model.to(dtype)
        with torch.no_grad():
            outs = []
            for chunk in x.to(dtype).split(job["batch"]):
                outs.append(eval(job["forward"], {"model": model, "x": chunk}))  # noqa: S307
                reset(model)
        logits[name] = torch.cat(outs)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(training_script_dict(job["save"], state, model), job[f"checkpoint_{name}"])
    torch.save(logits, job["logits"])
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
