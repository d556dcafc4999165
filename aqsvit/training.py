"""Train the full-precision reference model, and cache it as a checkpoint."""
from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn
from tqdm import tqdm

from aqsvit.data import DataBundle, iter_batches
from aqsvit.errors import AqsvitError
from aqsvit.evaluation import accuracy
from aqsvit.models import Checkpoint, ModelSpec, create_model, load_checkpoint, save_checkpoint

TRAIN_SETTINGS = ("epochs", "lr", "batch_size", "weight_decay", "seed")


def train(model: nn.Module, data: DataBundle, epochs: int = 30, lr: float = 5e-3,
          batch_size: int = 64, weight_decay: float = 0.01, seed: int = 0,
          device: str | torch.device = "cpu", progress: bool = True) -> float:
    """AdamW with a cosine schedule and a seeded shuffle; returns the test accuracy in percent."""
    torch.manual_seed(seed)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(data.train) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(total=steps, desc=f"train {model.spec.name}", disable=None if progress else True,
               unit="step", mininterval=1.0)
    for _ in range(epochs):
        model.train()
        for x, y in iter_batches(data.train, batch_size, shuffle=True, generator=gen):
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            functional.reset_net(model)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return accuracy(model, data.test, device=device)


def training_settings(**train_kwargs) -> dict:
    """:func:`train`'s settings with its defaults filled in (what a cached reference is keyed by)."""
    params = inspect.signature(train).parameters
    unknown = sorted(set(train_kwargs) - set(TRAIN_SETTINGS))
    if unknown:
        raise TypeError(f"not a training setting: {unknown[0]}")
    return {k: train_kwargs.get(k, params[k].default) for k in TRAIN_SETTINGS}


def reference_path(root: str | Path, spec: ModelSpec, data: DataBundle, **train_kwargs) -> Path:
    """Where the FP reference of this model, data and training lives: the name holds a digest of
    everything that builds the model (name, arguments, target) and every training setting, so a
    reference is never overwritten by another model's or another training's (the studies made on
    it stay resumable)."""
    made_of = json.dumps([spec.describe(), training_settings(**train_kwargs)], sort_keys=True, default=str)
    digest = hashlib.sha256(made_of.encode()).hexdigest()[:12]
    return Path(root) / f"{spec.name}-{data.name}-{data.fingerprint}-{digest}.pt"


def get_reference(spec: ModelSpec, data: DataBundle, root: str | Path = "studies/checkpoints",
                  checkpoint: str | Path | None = None, progress: bool = True,
                  device: str | torch.device = "cpu", untrained: str | None = None, **train_kwargs) -> Checkpoint:
    """Load the given checkpoint, or the cached one, or train and cache one (on ``device``). With
    ``untrained`` (why no reference may be trained here, and what to do) a missing one is refused.

    A given checkpoint must be of the same model spec (or a published Spikformer state_dict, imported
    onto it); its accuracy is re-measured on this data, on ``device``.
    ``train_kwargs`` go to :func:`train` (epochs, lr, batch_size, seed).
    """
    if checkpoint is not None:  # an aqsvit checkpoint, or a published Spikformer state_dict
        ckpt = load_checkpoint(checkpoint, spec)
        if ckpt.spec != spec:
            if ckpt.spec.name != spec.name:
                raise AqsvitError(f"checkpoint {checkpoint}: holds model {ckpt.spec.name}, not {spec.name}")
            diff = [k for k in spec.kwargs if ckpt.spec.kwargs.get(k) != spec.kwargs[k]]
            raise AqsvitError(f"checkpoint {checkpoint}: holds {spec.name} with "
                              + ", ".join(f"{k}={ckpt.spec.kwargs.get(k)!r}" for k in diff)
                              + "; the config asks for " + ", ".join(f"{k}={spec.kwargs[k]!r}" for k in diff))
        model = ckpt.build().to(device)
        ckpt.fp_accuracy = accuracy(model, data.test, device=device)
        ckpt.data_fingerprint = data.fingerprint
        return ckpt
    path = reference_path(root, spec, data, **train_kwargs)
    if path.exists():
        ckpt = load_checkpoint(path, target=spec.target)
        if ckpt.spec != spec:  # the name's digest says otherwise: a file someone put there, never replaced
            raise AqsvitError(f"checkpoint_dir: {path} holds model {ckpt.spec.describe()}, not {spec.describe()}; "
                              "move it away or choose another checkpoint_dir")
        return ckpt
    if untrained is not None:
        raise AqsvitError(f"checkpoint: no reference of {spec.describe()} trained with "
                          f"{training_settings(**train_kwargs)} in {root}; {untrained}")
    torch.manual_seed(train_kwargs.get("seed", 0))  # the initial weights too: same checkpoint from any caller
    model = create_model(spec)
    fp_acc = train(model, data, progress=progress, device=device, **train_kwargs)
    try:
        save_checkpoint(path, model, fp_acc, data.fingerprint)
    except OSError as exc:
        raise AqsvitError(f"checkpoint folder {path.parent}: cannot write ({exc.strerror})") from exc
    return load_checkpoint(path, target=spec.target)


CHANCE_MARGIN = 5.0  # points above the majority-class share a reference must reach to be searched


def check_labels(spec: ModelSpec, data: DataBundle) -> None:
    """Refuse data whose labels go beyond the model's classes (before any training)."""
    classes = spec.kwargs.get("num_classes")
    if classes is not None and data.num_classes > classes:
        raise AqsvitError(f"dataset: labels go up to {data.num_classes - 1}; allowed: 0..{classes - 1} "
                          f"(model.kwargs.num_classes={classes})")


def check_learned(data: DataBundle, fp_accuracy: float) -> None:
    """Refuse a reference no better than always answering the most frequent test label: every
    quantized assignment would look lossless against it."""
    if fp_accuracy <= data.chance + CHANCE_MARGIN:
        raise AqsvitError(f"reference: FP accuracy {fp_accuracy:.2f}% is at chance (most frequent test label "
                          f"{data.chance:.2f}%); allowed: above {data.chance + CHANCE_MARGIN:.2f}% "
                          "(check the data and train.*)")
