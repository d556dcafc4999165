"""Evaluation data prepared once per worker: no candidate decodes or copies the split again, and
every result equals the plain path's bit for bit."""
from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from PIL import Image
from spikingjelly.activation_based.functional import reset_net

from aqsvit.data import iter_batches, load_dataset, take
from aqsvit.data.prepared import PREPARED, EvalSettings, prepare_split
from aqsvit.data.preprocess import resolve_preprocess
from aqsvit.evaluation import accuracy
from aqsvit.proxy import drift, get_reference
from aqsvit.proxy.staged import staged_accuracy
from aqsvit.quant import uniform_assignment
from aqsvit.search.evaluator import Evaluator, difficulty_ranks, reordered
from aqsvit.search.run import prepare, run
from aqsvit.search.settings import SearchSettings


@pytest.fixture()
def folder_data(tmp_path):
    """120 of the shipped digits as 8-bit PNG files in class folders, shifted by a custom normalisation."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    for i in range(120):
        folder = tmp_path / f"d{raw.target[i]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.round(raw.images[i] / 16 * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return load_dataset("folder", (1, 8, 8), resolve_preprocess({"mean": [0.05], "std": [0.95]}), path=str(tmp_path),
                        test_size=40, calib_size=16)


@pytest.fixture()
def model(reference):
    return reference.build()


def test_a_search_decodes_the_split_once_and_measures_what_the_plain_path_measures(folder_data, model, reference):
    images = folder_data.test.dataset  # the ImageFolder behind train, calib and test
    assignments = [uniform_assignment(_layers(model), s, b)
                   for s, b in (("uniform", 4), ("pot", 3), ("uniform", 2))]
    # the plain path: the folder split read through its items, on the CPU
    plain_order = reordered(folder_data.test, difficulty_ranks(model, folder_data.test)[0])
    ev_plain_fp = accuracy(model, folder_data.test)

    prepared_before, decodes_before = PREPARED["splits"], images.decodes
    ev = Evaluator(model, folder_data, None, device="cpu", settings=EvalSettings(loader_workers=0))
    # the split decoded once, the activity images (the calibration split) once
    assert images.decodes - decodes_before == len(folder_data.test) + len(folder_data.calib)
    assert PREPARED["splits"] - prepared_before == 1
    assert ev.test.images.dtype == torch.uint8  # stored compact; normalised per batch
    assert 50 < ev.fp_accuracy < 100
    assert ev.fp_accuracy == ev_plain_fp
    x_plain, y_plain = next(iter_batches(plain_order, 16))
    x_prep, y_prep = next(iter_batches(ev.test, 16))
    assert torch.equal(x_prep, x_plain) and torch.equal(y_prep, y_plain)

    decodes, results = images.decodes, []
    for assignment in assignments:
        with ev.quantizer.applied(assignment) as quantized:
            results.append((staged_accuracy(quantized, ev.test, ev.fp_accuracy, 1.0, 4, limit=8),
                            ev.measure(assignment).accuracy))
    assert images.decodes == decodes  # no candidate decoded anything
    for assignment, (staged, measured) in zip(assignments, results):
        with ev.quantizer.applied(assignment) as quantized:
            assert measured == accuracy(quantized, folder_data.test)
            assert staged == staged_accuracy(quantized, plain_order, ev.fp_accuracy, 1.0, 4, limit=8)
    decodes = images.decodes

    # a whole search (drift reference, screen ordering, drift, staged evaluation): no decode but
    # the calibration images of its FP reference, once; the fine-tuned model's evaluator reuses the split
    settings = SearchSettings(n_trials=12, storage_url="sqlite:///unused.db", calib_images=8, calib_batch=4)
    search = prepare(ev, settings, "prepared-test", storage=optuna.storages.InMemoryStorage())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(search, progress=False)
    trials = search.study.get_trials(deepcopy=False)
    assert len(trials) >= 12 and sum(t.user_attrs.get("images", 0) for t in trials) > 0
    assert images.decodes - decodes == min(settings.calib_images, len(folder_data.calib))
    Evaluator(reference.build(), folder_data, 50.0, device="cpu", settings=EvalSettings(loader_workers=0))
    assert PREPARED["splits"] - prepared_before == 1
    # and the drift a trial sees is the plain path's: per batch, float sums added one by one
    reference = get_reference(model, folder_data.calib, "prepared-test", images=8, batch_size=4)
    def logits(m):
        out = []
        for x, _ in iter_batches(take(folder_data.calib, 8), 4):
            out.append(m(x).detach())
            reset_net(m)
        return out

    fp_logits = logits(model)
    with ev.quantizer.applied(assignments[0]) as quantized:
        seen = drift(quantized, reference).values
        q_logits = logits(quantized)
    diff = norm = 0.0
    for z_q, z_fp in zip(q_logits, fp_logits):
        diff += float(((z_q - z_fp) ** 2).sum())
        norm += float((z_fp ** 2).sum())
    assert seen["logit"] == (diff / norm) ** 0.5 > 0


def _layers(model):
    from aqsvit.quant import LayerQuantizer
    return LayerQuantizer(model).layers


def test_loader_processes_decode_the_same_images(folder_data):
    one = prepare_split(folder_data.calib, "cpu", EvalSettings(loader_workers=0))
    two = prepare_split(folder_data.train, "cpu", EvalSettings(loader_workers=2))
    direct = torch.stack([folder_data.train.dataset.raw(i)[0] for i in folder_data.train.indices])
    assert torch.equal(two.images, direct) and two.images.dtype == torch.uint8
    assert torch.equal(one.labels, torch.tensor([folder_data.calib.dataset.items[i][1]
                                                 for i in folder_data.calib.indices]))


def test_eval_settings_are_checked():
    from aqsvit.errors import AqsvitError
    for bad, field in (({"eval_batch": 0}, "search.eval_batch"), ({"eval_memory_gb": -1}, "search.eval_memory_gb"),
                       ({"cache_gb": -0.5}, "search.cache_gb"), ({"loader_workers": "many"}, "search.loader_workers")):
        with pytest.raises(AqsvitError, match=field):
            EvalSettings(**bad)  # checked when built


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_a_gpu_the_split_is_resident_and_results_match_the_cpu(folder_data, model, reference):
    cpu = Evaluator(model, folder_data, None, device="cpu", settings=EvalSettings(loader_workers=0, eval_batch=16))
    gpu = Evaluator(reference.build(), folder_data, None, device="cuda", settings=EvalSettings(loader_workers=0, eval_batch=16))
    assert gpu.test.resident and gpu.test.images.device.type == "cuda"
    assert abs(gpu.fp_accuracy - cpu.fp_accuracy) <= 100 / len(folder_data.test)  # float sums may differ by a spike
    pinned = prepare_split(folder_data.calib, "cuda", EvalSettings(eval_memory_gb=0, loader_workers=0))
    assert not pinned.resident and pinned.images.is_pinned()
    x, _ = next(iter_batches(pinned, 4))
    assert x.device.type == "cuda"


@pytest.mark.parametrize("override, message", [
    ("device=cuda", "aqsvit: error: device: got 'cuda'; allowed: auto or cpu (no GPU is visible)"),
    ("search.eval_batch=0", "aqsvit: error: search.eval_batch: got 0; allowed: auto, or integers >= 1"),
    ("dataset.normalize=cifar", "aqsvit: error: dataset.normalize: got 'cifar'; allowed: none, cifar10, cifar100"),
])
def test_bad_device_batch_or_normalisation_is_one_line(tmp_path, override, message):
    import subprocess
    import sys

    if override == "device=cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", override, f"checkpoint_dir={tmp_path}",
                          f"storage.url=sqlite:///{tmp_path}/s.db", "progress=false"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.startswith(message) and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "s.db").exists()
