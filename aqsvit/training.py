"""Train the full-precision reference model, and cache it as a checkpoint."""
from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)


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


def reference_path(root: str | Path, spec: ModelSpec, data: DataBundle) -> Path:
    """Where the FP reference for this model and data lives: one file per (model, data) pair."""
    return Path(root) / f"{spec.name}-{data.name}-{data.fingerprint}.pt"


def get_reference(spec: ModelSpec, data: DataBundle, root: str | Path = "studies/checkpoints",
                  checkpoint: str | Path | None = None, progress: bool = True,
                  device: str | torch.device = "cpu", **train_kwargs) -> Checkpoint:
    """Load the given checkpoint, or the cached one, or train and cache one (on ``device``).

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
    path = reference_path(root, spec, data)
    if path.exists():
        ckpt = load_checkpoint(path)
        if ckpt.spec == spec:
            return ckpt
        log.warning("cached reference %s was built with other settings; retraining", path)
    torch.manual_seed(train_kwargs.get("seed", 0))  # the initial weights too: same checkpoint from any caller
    model = create_model(spec)
    fp_acc = train(model, data, progress=progress, device=device, **train_kwargs)
    try:
        save_checkpoint(path, model, fp_acc, data.fingerprint)
    except OSError as exc:
        raise AqsvitError(f"checkpoint folder {path.parent}: cannot write ({exc.strerror})") from exc
    return load_checkpoint(path)


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
    labels = torch.cat([y for _, y in iter_batches(data.test, 1024)])
    majority = 100.0 * torch.bincount(labels).max().item() / max(len(labels), 1)
    if fp_accuracy <= majority + CHANCE_MARGIN:
        raise AqsvitError(f"reference: FP accuracy {fp_accuracy:.2f}% is at chance (most frequent test label "
                          f"{majority:.2f}%); allowed: above {majority + CHANCE_MARGIN:.2f}% "
                          "(check the data and train.*)")
