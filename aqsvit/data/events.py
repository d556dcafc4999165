"""Event-camera (DVS) data: local tonic data sets, and DVS-like events made from shipped images.

Events are tonic's structured arrays (fields ``x``, ``y``, ``p``, ``t`` in microseconds); tonic's
transforms bin them into ``T`` frames of 2 polarity channels, the ``[T, 2, H, W]`` input of the
event models (the frame count is their time dimension). Nothing here downloads: a tonic data set
must already lie in its own layout under ``dataset.path``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from aqsvit.data.bundle import DataBundle, seeded_split, tensor_bundle
from aqsvit.errors import AqsvitError, invalid

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
FrameShape = tuple[int, int, int, int]  # (T, 2, H, W)


def check_frame_shape(input_shape: tuple[int, ...], field: str = "model") -> FrameShape:
    """Event data feeds models whose input is ``(T, 2, H, W)`` (registered with ``frames``)."""
    if len(input_shape) != 4 or input_shape[1] != 2:
        raise AqsvitError(f"{field}: event data needs an event model (input frames x 2 polarities x H x W, e.g. "
                          f"model=spikformer_dvs_digits); this model takes {tuple(input_shape)}")
    return tuple(int(s) for s in input_shape)  # type: ignore[return-value]


def images_to_events(images: np.ndarray, seed: int = 0, threshold: float = 0.4, saccade: int = 2,
                     steps_per_saccade: int = 12, step_us: int = 1000, noise_rate: float = 0.002) -> list[np.ndarray]:
    """DVS-like events from still images ``[N, H, W]`` in [0, 1], as N-MNIST was recorded.

    The image moves along three saccades (a triangle of ``saccade`` pixels); each pixel keeps a
    log-intensity reference and emits an ON (OFF) event each time its log intensity rises (falls)
    by ``threshold`` (delta encoding). Timestamps are jittered within a step and a few random
    noise events are added, both from a generator seeded with ``seed``.
    """
    rng = np.random.default_rng(seed)
    corners = [(0, 0), (saccade, saccade), (-saccade, saccade), (0, 0)]
    path = [(round(a[0] + (b[0] - a[0]) * k / steps_per_saccade), round(a[1] + (b[1] - a[1]) * k / steps_per_saccade))
            for a, b in zip(corners, corners[1:]) for k in range(1, steps_per_saccade + 1)]
    out = []
    for image in np.asarray(images, dtype=np.float64):
        height, width = image.shape
        log_image = np.log(image + 0.05)
        reference = log_image.copy()
        chunks = []
        for step, (dy, dx) in enumerate(path, 1):
            moved = np.roll(log_image, (dy, dx), axis=(0, 1))
            diff = moved - reference
            count = np.floor(np.abs(diff) / threshold).astype(np.int64)
            ys, xs = np.nonzero(count)
            if len(ys):
                n = count[ys, xs]
                polarity = np.repeat(diff[ys, xs] > 0, n)
                t = step * step_us + rng.integers(0, step_us, size=int(n.sum()))
                chunks.append((np.repeat(xs, n), np.repeat(ys, n), polarity, t))
                reference[ys, xs] += np.sign(diff[ys, xs]) * n * threshold
            noise = rng.random((height, width)) < noise_rate
            ys, xs = np.nonzero(noise)
            chunks.append((xs, ys, rng.random(len(xs)) < 0.5, step * step_us + rng.integers(0, step_us, len(xs))))
        events = np.zeros(sum(len(c[0]) for c in chunks), dtype=EVENT_DTYPE)
        for name, values in zip(("x", "y", "p", "t"), (np.concatenate([c[i] for c in chunks]) for i in range(4))):
            events[name] = values
        out.append(np.sort(events, order="t"))
    return out


def to_frames(events: np.ndarray, sensor_size: tuple[int, int], frames: FrameShape) -> torch.Tensor:
    """Bin one recording into ``(T, 2, H, W)`` float frames of event counts with tonic."""
    import tonic.transforms as tt

    steps, _, height, width = frames
    sensor = (int(sensor_size[0]), int(sensor_size[1]), 2)
    if sensor[:2] != (width, height):
        events = tt.Downsample(sensor_size=sensor, target_size=(width, height))(events)
        sensor = (width, height, 2)
    if len(events) == 0:
        return torch.zeros(frames)
    binned = tt.ToFrame(sensor_size=sensor, n_time_bins=steps)(events)
    return torch.as_tensor(binned, dtype=torch.float32)


def digits_events(input_shape: tuple[int, ...], test_size: int = 450, calib_size: int = 256,
                  seed: int = 0) -> DataBundle:
    """scikit-learn's shipped digits, moved in front of a simulated DVS and binned into frames."""
    from sklearn.datasets import load_digits
    from torch.nn.functional import interpolate

    frames = check_frame_shape(input_shape)
    raw = load_digits()
    size = frames[2:]
    images = interpolate(torch.as_tensor(raw.images[:, None] / 16.0, dtype=torch.float32), size=size,
                         mode="bilinear", align_corners=False)[:, 0].clamp(0, 1).numpy()
    x = torch.stack([to_frames(e, (size[1], size[0]), frames) for e in images_to_events(images, seed=seed)])
    y = torch.as_tensor(raw.target, dtype=torch.long)
    return tensor_bundle("digits_events", x, y, 10, test_size, calib_size, seed)


class _NoDownload:
    """Mixed into a tonic data set: aqsvit never downloads; a missing layout is one clear line."""

    def download(self) -> None:
        raise AqsvitError(f"dataset.path: no {type(self).__name__} files under {self.location_on_system}; "
                          f"put the data set there in tonic's layout (archive and extracted folder: "
                          f"{getattr(self, 'filename', '')}), aqsvit does not download")


def _tonic_classes() -> dict[str, tuple[type, tuple[int, int]]]:
    """Supported tonic data sets and their sensor size (width, height)."""
    import tonic.datasets as td

    return {"dvsgesture": (td.DVSGesture, (128, 128)), "cifar10dvs": (td.CIFAR10DVS, (128, 128)),
            "ncaltech101": (td.NCALTECH101, (240, 180))}


class FramedEvents(Dataset):
    """A tonic data set whose recordings are binned into frames on access."""

    def __init__(self, recordings: Dataset, sensor_size: tuple[int, int], frames: FrameShape) -> None:
        self.recordings, self.sensor_size, self.frames = recordings, sensor_size, frames

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        events, label = self.recordings[index]
        return to_frames(events, self.sensor_size, self.frames), int(label)


def dvs(path: str, input_shape: tuple[int, ...], kind: str = "dvsgesture", test_size: int = 450,
        calib_size: int = 256, seed: int = 0) -> DataBundle:
    """A tonic DVS data set under ``path`` (DVSGesture's own train/test split; the others are split
    with ``seed``), binned into the model's ``(T, 2, H, W)``."""
    classes = _tonic_classes()
    if kind not in classes:
        raise invalid("dataset.kwargs.kind", kind, sorted(classes))
    name = kind
    frames = check_frame_shape(input_shape)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise AqsvitError(f"dataset.path: {root} is not a folder; put the {name} data set there in tonic's layout "
                          f"(<path>/{classes[name][0].__name__}/...), aqsvit does not download")
    base, sensor = classes[name]
    local = type(base.__name__, (_NoDownload, base), {})
    try:
        if name == "dvsgesture":
            train_all, test = local(str(root), train=True), local(str(root), train=False)
        else:
            full = local(str(root))
    except (OSError, ValueError, IndexError) as exc:
        raise AqsvitError(f"dataset.path: cannot read {name} under {root} ({exc})") from exc
    if name == "dvsgesture":
        order = np.random.default_rng(seed).permutation(len(train_all))
        calib_n = min(calib_size, len(train_all) - 1)
        parts = (Subset(train_all, order[calib_n:].tolist()), Subset(train_all, order[:calib_n].tolist()), test)
        files = list(train_all.data) + list(test.data)
        num_classes = len(base.classes)
    else:
        idx = seeded_split(len(full), min(test_size, len(full) // 3), min(calib_size, len(full) // 3), seed)
        parts = tuple(Subset(full, i.tolist()) for i in idx)
        files = [str(f) for f in full.data]
        num_classes = len(getattr(base, "classes", [])) or len(set(full.targets))
    if not files:
        raise AqsvitError(f"dataset.path: no {name} recordings under {root}")
    digest = hashlib.sha256(f"{name}:{seed}:{calib_size}:{frames}".encode())
    for file in files:
        digest.update(f"{Path(file).name}:{Path(file).stat().st_size}".encode())
    train, calib, test = (FramedEvents(p, sensor, frames) for p in parts)
    return DataBundle(name, train, calib, test, num_classes, frames, digest.hexdigest()[:16])
