"""Throughput at scale: how close aqsvit's per-candidate evaluation and a whole search come to the
model's bare forward.

Spikformer CIFAR-10 4-384 at 32x32 (the faithful ``spikformer_cifar10_4_384`` of the zoo, random
weights) on synthetic 8-bit images normalised with the cifar10 preset. The labels are the FP
model's own predictions, so the FP accuracy is 100% and a quantized candidate loses accuracy as on
real data (random weights make most candidates fail or pass alike: the walk is not a real model's,
its cost per candidate is).

- (a) bare torch: FP inference over the split, model input already on the device, batches of the
  evaluation batch size, no aqsvit code;
- (b) aqsvit: per candidate, apply an assignment, measure it on the whole split (``Evaluator.measure``:
  accuracy, size, energy), restore the FP weights; images/s over several candidates, and (b)/(a);
- (c) a whole greedy search (``search.start=one_width``, defaults otherwise, SQLite storage):
  wall time from the FP reference to the result, images evaluated, and the share of that wall time
  spent inside the model's forward (timed by hooks on the model, with a device sync at each end).
  With ``--workers N``, N processes share the device and one journal-file study (forward share:
  the workers' forward seconds over N times the wall time).

    .venv/bin/python benchmarks/scale.py --device cuda --images 10000          # on a GPU
    .venv/bin/python benchmarks/scale.py --device cpu --images 512 --depths 2   # on the CPU, reduced

``benchmarks/gpu_check.sh`` runs it on a GPU, with one worker and with two sharing the GPU.
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
import tempfile
import time
from pathlib import Path

import optuna
import torch
from spikingjelly.activation_based import functional

import aqsvit  # noqa: F401
from aqsvit.data.bundle import DataBundle, ImageTensors
from aqsvit.settings import EvalSettings
from aqsvit.data.preprocess import resolve_preprocess
from aqsvit.devices import pin_worker
from aqsvit.evaluation import eval_batches
from aqsvit.models import create_model
from aqsvit.quant import uniform_assignment
from aqsvit.report import markdown_table
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.run import SearchSummary, prepare, run, summarize
from aqsvit.search.settings import SearchSettings

RESULTS = Path(__file__).parent / "results"
CALIB = 64


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def bare_forward(model, x: torch.Tensor, batch: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """(a): images/s of the plain FP forward over ``x`` (model input on the device), and the predictions."""
    model.eval()
    for chunk in x[:batch].split(batch):  # warm-up (kernels, allocator)
        model(chunk)
        functional.reset_net(model)
    sync(device)
    started = time.perf_counter()
    predictions = []
    for chunk in x.split(batch):
        predictions.append(model(chunk).argmax(1))
        functional.reset_net(model)
    sync(device)
    return len(x) / (time.perf_counter() - started), torch.cat(predictions)


@torch.no_grad()
def recalibrate_bn(model, x: torch.Tensor) -> None:
    """BatchNorm statistics of ``x``: a freshly initialised Spikformer's unit statistics leave its
    deeper layers silent (every image the same logits, every candidate the same result)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the plain average over the batches seen
    model.train()
    model(x)
    functional.reset_net(model)
    model.eval()


class ForwardTimer:
    """Seconds spent inside ``model``'s forward (pre- and post-hooks on the top module)."""

    def __init__(self, model, device: torch.device) -> None:
        self.seconds, self.device, self._start = 0.0, device, 0.0
        self.handles = [model.register_forward_pre_hook(self._enter), model.register_forward_hook(self._exit)]

    def _enter(self, *_):
        sync(self.device)
        self._start = time.perf_counter()

    def _exit(self, *_):
        sync(self.device)
        self.seconds += time.perf_counter() - self._start

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:<i>")
    parser.add_argument("--images", type=int, default=10000, help="evaluation split (synthetic images)")
    parser.add_argument("--batch", default="auto", help="search.eval_batch: auto or an integer")
    parser.add_argument("--depths", type=int, default=4, help="Spikformer blocks (4 = the published config)")
    parser.add_argument("--embed-dims", type=int, default=384)
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=4, help="assignments measured for (b)")
    parser.add_argument("--delta", type=float, default=1.0, help="the search's delta (points)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: all cores)")
    parser.add_argument("--workers", type=int, default=1, help="(c): processes sharing the device and the study")
    parser.add_argument("--out", default=str(RESULTS), help="folder for scale.md")
    args = parser.parse_args()
    device = torch.device(pin_worker(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    torch.manual_seed(0)
    heads = 12 if args.embed_dims % 12 == 0 else 4
    model = create_model("spikformer_cifar10_4_384", depths=args.depths, img_size=args.img_size,
                         embed_dims=args.embed_dims, num_heads=heads).eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    preprocess = resolve_preprocess("cifar10")
    n_train = 8
    generator = torch.Generator().manual_seed(0)
    stored = torch.randint(0, 256, (n_train + CALIB + args.images, 3, args.img_size, args.img_size),
                           dtype=torch.uint8, generator=generator)
    recalibrate_bn(model, preprocess.to_input(stored[:n_train + CALIB].to(device)))
    settings = EvalSettings(eval_batch="auto" if args.batch == "auto" else int(args.batch))

    # the labels: the FP model's predictions (measured by the bare loop at the evaluation batch size)
    model_input = preprocess.to_input(stored.to(device))
    batch = eval_batches(settings.eval_batch, model, model_input[:8], device)[1]
    _, labels = bare_forward(model, model_input[:n_train + CALIB], batch, device)
    rate_a, test_labels = bare_forward(model, model_input[n_train + CALIB:], batch, device)
    labels = torch.cat([labels, test_labels]).cpu()
    del model_input
    data = _bundle(stored, labels, n_train, preprocess)

    started = time.perf_counter()
    evaluator = Evaluator(model, data, None, device=str(device), settings=settings)
    setup = time.perf_counter() - started
    assert evaluator.fp_accuracy == 100.0, evaluator.fp_accuracy
    assignments = [uniform_assignment(evaluator.layers, s, b)
                   for s, b in [("uniform", 8), ("pot", 4), ("uniform", 4), ("uniform", 6)] * args.candidates]
    assignments = assignments[:args.candidates]
    evaluator.measure(assignments[0])  # warm-up
    sync(device)
    started = time.perf_counter()
    for assignment in assignments:
        evaluator.measure(assignment)
    sync(device)
    rate_b = len(assignments) * args.images / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        storage_url = f"sqlite:///{tmp}/scale.db" if args.workers == 1 else f"journal:///{tmp}/scale.log"
        search_settings = SearchSettings(start="one_width", delta=args.delta, storage_url=storage_url,
                                         study_name="scale", workers=args.workers)
        started = time.perf_counter()
        if args.workers == 1:
            forward_s, setup_images, summary = search_timed(evaluator, search_settings, device)
            wall = time.perf_counter() - started
            trials, images = summary.trials, summary.images + setup_images
        else:
            jobs = [(model.state_dict(), data, settings, search_settings, str(device))] * args.workers
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                results = pool.starmap(worker_search, [(args, *job) for job in jobs])
            wall = time.perf_counter() - started
            summary = summarize(prepare(evaluator, search_settings, "scale", read_only=True))
            forward_s = sum(r[0] for r in results) / args.workers
            trials, images = summary.trials, summary.images + sum(r[1] for r in results)

    where = ("GPU " + torch.cuda.get_device_name(device)) if device.type == "cuda" else \
        f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    config = (f"Spikformer {args.depths}-{args.embed_dims} at {args.img_size}x{args.img_size}" +
              ("" if (args.depths, args.embed_dims, args.img_size) == (4, 384, 32) else " (reduced)"))
    rows = [(where, config, f"{params / 1e6:.2f}M", args.images, batch, f"{rate_a:.1f}", f"{rate_b:.1f}",
             f"{rate_b / rate_a:.2f}", args.workers, f"{wall:.1f}", trials, images, f"{forward_s / wall:.0%}")]
    table = markdown_table(("device", "model", "params", "split", "eval batch", "(a) bare img/s",
                            "(b) aqsvit img/s", "(b)/(a)", "(c) workers", "(c) search wall s", "trials",
                            "images evaluated", "forward share"), rows)
    command = "benchmarks/scale.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                                  if k != "out")
    kind = ("GPU" if device.type == "cuda" else "CPU") + ("" if args.workers == 1 else f", {args.workers} workers")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kept_rows, kept_commands = others(out / "scale.md", kind, args.workers)
    commands = sorted([*kept_commands, f"- {kind}: `.venv/bin/python {command}` (setup before (c): preparing the "
                       f"split, FP order, activity, {setup:.1f} s, not in (c); (b) over {len(assignments)} candidates)"])
    text = "\n".join([
        "# Scale: per-candidate evaluation and a whole search against the bare forward", "",
        "The faithful Spikformer via `spikformer_cifar10_4_384` (depths, embed_dims, img_size as in the table), "
        "random weights (BatchNorm statistics of the synthetic images, so that spikes reach the head), synthetic "
        "uint8 images with the cifar10 normalisation; labels = the FP model's predictions. (a) bare torch FP "
        "forward; (b) aqsvit apply + evaluate + restore per candidate; (c) greedy search, start=one_width, SQLite "
        "(N workers: N processes sharing the device and a journal file). Each run rewrites its own row (device "
        "kind and workers) and keeps the others.", "",
        "Commands, one per device kind:", "", *commands, "",
        table + "".join("\n" + row for row in kept_rows), ""])
    (out / "scale.md").write_text(text)
    print(text)


def others(path: Path, kind: str, workers: int) -> tuple[list[str], list[str]]:
    """The table rows and command lines of ``path`` measured on another device kind (GPU/CPU) or
    with another number of workers (``kind`` names both in the command lines)."""
    if not path.exists():
        return [], []
    lines = path.read_text().splitlines()
    rows = [l for l in lines if l.startswith("| ") and not l.startswith("| device")
            and not (l.startswith(f"| {kind.split(',')[0]}") and row_workers(l) == workers)]
    commands = [l for l in lines if l.startswith("- ") and not l.startswith(f"- {kind}:")]
    return rows, commands


def row_workers(row: str) -> int:
    """The (c) workers of a table row (rows written before that column: 1)."""
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    return int(cells[8]) if len(cells) == 13 else 1


def search_timed(evaluator: Evaluator, settings: SearchSettings, device: torch.device) -> tuple[float, int, SearchSummary]:
    """(c) in this process: seconds inside the model's forward, this process's setup images, and
    the summary it reads when the search has ended."""
    timer = ForwardTimer(evaluator.model, device)
    search = prepare(evaluator, settings, "scale", cache_dir=None)
    run(search, progress=False)
    summary = summarize(search)
    timer.close()
    return timer.seconds, search.setup_images, summary


def worker_search(args, state: dict, data: DataBundle, eval_settings: EvalSettings, settings: SearchSettings,
                  device: str) -> tuple[float, int]:
    """One of ``--workers`` processes of (c), with the same model and data and its own evaluator on
    ``device``: its forward seconds and setup images."""
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    heads = 12 if args.embed_dims % 12 == 0 else 4
    model = create_model("spikformer_cifar10_4_384", depths=args.depths, img_size=args.img_size,
                         embed_dims=args.embed_dims, num_heads=heads)
    model.load_state_dict(state)
    evaluator = Evaluator(model.eval().to(device), data, None, device=device, settings=eval_settings)
    return search_timed(evaluator, settings, torch.device(device))[:2]


def _bundle(stored: torch.Tensor, labels: torch.Tensor, n_train: int, preprocess) -> DataBundle:
    """Train (a few images: unused), calibration and test splits over ``stored`` in order."""
    def part(a: int, b: int | None) -> ImageTensors:
        return ImageTensors(stored[a:b], labels[a:b], preprocess)
    return DataBundle("synthetic", part(0, n_train), part(n_train, n_train + CALIB), part(n_train + CALIB, None), 10,
                      tuple(stored.shape[1:]), f"synthetic-{len(stored)}", preprocess)


if __name__ == "__main__":
    main()
