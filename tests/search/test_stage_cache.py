"""Evaluation from the first changed stage: logits equal the full forward's bit for bit on every
zoo model family, the cache saves the forward of the unchanged stages, and the MAC count is right."""
from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import TensorDataset

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model
from aqsvit.models.protocol import Stage, run_stages
from aqsvit.proxy.drift import drift_steps
from aqsvit.proxy.reference import compute_reference
from aqsvit.quant import LayerQuantizer, uniform_assignment
from aqsvit.search.stage_cache import StageCache, model_stages

SMALL = {"embed_dims": 32, "num_heads": 2, "depths": 2}
# one model per class and layout of the zoo: (name, builder kwargs, input of 4 images)
FAMILIES = [
    ("spikformer_digits", {}, (1, 8, 8)),
    ("spikformer_wide", {"depths": 3}, (1, 16, 16)),
    ("spikformer_dvs_digits", {"frames": 3}, (3, 2, 16, 16)),
    ("spikformer_cifar10_4_384", SMALL, (3, 32, 32)),
    ("spikformer_imagenet_8_384", SMALL, (3, 64, 64)),
    ("spikformer_cifar10dvs_2_256", {**SMALL, "frames": 3}, (3, 2, 64, 64)),
    ("sdt_cifar10_2_256", SMALL, (3, 32, 32)),
    ("sdt_imagenet_8_384", SMALL, (3, 64, 64)),
    ("sdt_cifar10dvs_2_256", {**SMALL, "frames": 3}, (3, 2, 64, 64)),
    ("sdt_dvs128gesture_2_256", {**SMALL, "frames": 3}, (3, 2, 64, 64)),
    ("qkformer_cifar10_4_384", {"embed_dims": 64, "num_heads": 2, "depths": 3}, (3, 32, 32)),
    ("qkformer_imagenet_10_384", {"embed_dims": 64, "num_heads": 2, "depths": 3}, (3, 64, 64)),
    ("qkformer_cifar10dvs_2_256", {"embed_dims": 64, "num_heads": 2, "depths": 2, "frames": 3}, (3, 2, 64, 64)),
    ("qkformer_digits", {}, (1, 8, 8)),  # spikingjelly's own: no stages, the whole forward
    ("sdt_digits", {}, (1, 8, 8)),
]


def lively(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, so that spikes reach the head."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 0.6)
            module.weight.data.uniform_(0.5, 3.0)
            module.bias.data.uniform_(-0.5, 1.0)
    return model.eval()


@torch.no_grad()
def full_logits(quantizer: LayerQuantizer, assignment, batches) -> torch.Tensor:
    """The plain forward over the same batches (a batch's size may change the last bits)."""
    outs = []
    with quantizer.applied(assignment) as model:
        for _, x in batches:
            outs.append(model(x))
            functional.reset_net(model)
    return torch.cat(outs)


@torch.no_grad()
def cached_logits(cache: StageCache, quantizer: LayerQuantizer, assignment, batches) -> torch.Tensor:
    logits = cache.candidate(assignment)
    outs = []
    with quantizer.applied(assignment) as model:
        for start, x in batches:
            outs.append(logits(x, start))
            functional.reset_net(model)
    return torch.cat(outs)


@pytest.mark.parametrize(("name", "kwargs", "shape"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_logits_from_the_first_changed_stage_equal_the_full_forward(name, kwargs, shape):
    torch.manual_seed(0)
    model = lively(create_model(name, **kwargs))
    x = torch.rand(4, *shape) * 2 if len(shape) == 4 else torch.randn(4, *shape)
    quantizer = LayerQuantizer(model)
    cache = StageCache(model, quantizer.names, 1 << 30)
    cache.count_macs(x[:2])
    batches = [(0, x[:3]), (3, x[3:])]  # uneven batches: entries are keyed by image range
    base = uniform_assignment(quantizer.layers, "uniform", 8)
    assert torch.equal(cached_logits(cache, quantizer, base, batches), full_logits(quantizer, base, batches))
    names = quantizer.names
    changed = [names[0], names[len(names) // 2], names[-2], names[-1]]
    results = []
    for layer in changed:
        candidate = {**base, layer: ("pot", 3)}
        before = cache.macs
        for _ in range(2):  # the second run starts from the candidate's own stored inputs
            got = cached_logits(cache, quantizer, candidate, batches)
            assert torch.equal(got, full_logits(quantizer, candidate, batches)), (name, layer)
        results.append(got)
        if len(cache.stages) > 1 and layer == names[-1]:
            # the head's layer: only the last stage runs (both times)
            assert cache.macs - before == pytest.approx(2 * len(x) * cache.stage_macs[-1])
    assert not all(torch.equal(r, results[0]) for r in results[1:]), "no candidate changed the logits"
    assert len(model_stages(model)) == (1 if name.endswith("_digits") and not name.startswith("spikformer") else
                                        len(cache.stages))


@pytest.mark.parametrize("name, kwargs, shape", [FAMILIES[1], FAMILIES[7], FAMILIES[10]],
                         ids=[FAMILIES[i][0] for i in (1, 7, 10)])
def test_drift_from_the_first_changed_stage_equals_the_full_capture(name, kwargs, shape):
    torch.manual_seed(0)
    model = lively(create_model(name, **kwargs))
    quantizer = LayerQuantizer(model)
    calib = TensorDataset(torch.rand(5, *shape) * 2, torch.tensor([0, 1, 2, 1, 0]))
    reference = compute_reference(model, calib, images=5, batch_size=3, layer_inputs=())
    cache = StageCache(model, quantizer.names, 1 << 30)
    base = uniform_assignment(quantizer.layers, "uniform", 6)
    for assignment in [base, *({**base, layer: ("pot", 2)} for layer in quantizer.names[::3])]:
        with quantizer.applied(assignment) as quantized:
            plain = list(drift_steps(quantized, reference))
            cached = list(drift_steps(quantized, reference,
                                     forward=cache.candidate(assignment, "calibration", with_payload=True)))
        assert plain == cached
    assert cache.stored_bytes > 0


def test_entries_are_dropped_to_the_budget_and_results_stay_exact():
    torch.manual_seed(0)
    model = lively(create_model("spikformer_digits"))
    x = torch.randn(6, 1, 8, 8)
    quantizer = LayerQuantizer(model)
    batches = [(0, x[:2]), (2, x[2:4]), (4, x[4:])]
    one_input = 4 * 2 * 64 * 4 * 4  # T x images x channels x tokens x 4 bytes (a block's input)
    cache = StageCache(model, quantizer.names, 3 * one_input)
    cache.count_macs(x[:2])
    base = uniform_assignment(quantizer.layers, "uniform", 8)
    for layer in [None, *quantizer.names]:
        assignment = base if layer is None else {**base, layer: ("uniform", 2)}
        assert torch.equal(cached_logits(cache, quantizer, assignment, batches), full_logits(quantizer, assignment, batches))
        assert cache.stored_bytes <= 3 * one_input
    off = StageCache(model, quantizer.names, 0)
    off.count_macs(x[:2])
    cached_logits(off, quantizer, base, batches)
    cached_logits(off, quantizer, {**base, quantizer.names[-1]: ("pot", 4)}, batches)
    assert off.macs == pytest.approx(2 * len(x) * off.full_macs) and off.stored_bytes == 0


class TwoLinears(nn.Module):
    """A user model with declared stages: MACs are in*out per image and layer."""

    def __init__(self, miss_a_layer: bool = False) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 3)
        self.miss = miss_a_layer

    def aqsvit_stages(self) -> list[Stage]:
        return [Stage(("a",), lambda x: torch.relu(self.a(x.flatten(1)))), *([] if self.miss else [Stage(("b",), self.b)])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.aqsvit_stages(), x)


def test_macs_per_stage_are_counted_from_the_operations():
    model = TwoLinears()
    cache = StageCache(model, ["a", "b"], 1 << 20)
    cache.count_macs(torch.randn(7, 6))
    assert cache.stage_macs == [30, 15] and cache.full_macs == 45


def test_a_layer_outside_every_declared_stage_is_one_line():
    with pytest.raises(AqsvitError, match="'b' lies in 0 stages"):
        StageCache(TwoLinears(miss_a_layer=True), ["a", "b"], 1 << 20)


@pytest.mark.parametrize("front", [(), (0.5, 2.0)])
def test_a_search_walks_the_same_trials_with_the_cache_at_a_lower_cost(reference, digits_data, tmp_path, front):
    """A front too: its walks switch the split's order, and each order keeps its own entries."""
    from aqsvit.data.prepared import EvalSettings
    from aqsvit.search.evaluator import Evaluator
    from aqsvit.search.run import prepare, run, summarize
    from aqsvit.search.settings import SearchSettings
    from aqsvit.search.vocabulary import IDLE_ATTR

    outcomes = {}
    for cache_gb in (0.0, 1.0):
        evaluator = Evaluator(reference.build(), digits_data, reference.fp_accuracy,
                              settings=EvalSettings(cache_gb=cache_gb))
        settings = SearchSettings(schemes=("uniform", "pot"), bits=(8, 4, 2), storage_url=f"sqlite:///{tmp_path}/s.db",
                                  study_name=f"cache-{cache_gb:g}", front=front)
        search = prepare(evaluator, settings, "digits")
        run(search, progress=False)
        summary = summarize(search)
        trials = search.study.get_trials(deepcopy=False)
        outcomes[cache_gb] = ([(t.params, t.state, t.values, t.user_attrs.get("images"), t.user_attrs.get("drift_all"))
                               for t in trials],
                              summary.choices, summary.cost,
                              [t.user_attrs["macs"] for t in trials if not t.system_attrs.get(IDLE_ATTR)])
    (walk_off, chosen_off, cost_off, macs_off), (walk_on, chosen_on, cost_on, macs_on) = outcomes[0.0], outcomes[1.0]
    assert walk_on == walk_off and chosen_on == chosen_off  # the same decisions and drifts, image for image
    assert all(m > 0 for m in macs_off + macs_on)
    # every candidate after the first changes a unit of an evaluated base: part of its forward is skipped
    assert cost_on < 0.8 * cost_off, (cost_on, cost_off)
    assert sum(on < off for on, off in zip(macs_on, macs_off)) > len(macs_on) // 2


def test_each_order_of_the_split_has_its_own_entries_and_a_dropped_order_is_not_held(reference, digits_data):
    """Setting an order back finds its stored stage inputs (a second staged evaluation runs fewer
    MACs); an order nothing else holds is freed, and its name is never given again."""
    import gc
    import weakref

    from aqsvit.search.evaluator import Evaluator, reordered

    evaluator = Evaluator(reference.build(), digits_data, reference.fp_accuracy)
    first, layer = evaluator.test, evaluator.layers[-1].name
    assignment = {layer: ("uniform", 4)}

    def staged_macs() -> float:
        before = evaluator.stages.macs
        with evaluator.quantizer.applied(assignment):
            evaluator.staged(assignment, 100.0)  # no stop: the whole split
        return evaluator.stages.macs - before

    cold = staged_macs()
    other = reordered(first, torch.arange(len(first)).flip(0))
    evaluator.test = other
    assert staged_macs() == cold  # a new order: nothing stored for it yet
    evaluator.test = first
    assert staged_macs() < 0.5 * cold  # back to the first order: its entries are still there
    held, name = weakref.ref(other), evaluator._split
    evaluator.test = other
    other_name = evaluator._split
    del other
    evaluator.test = first
    gc.collect()
    assert held() is None and evaluator._split == name
    evaluator.test = reordered(first, torch.arange(len(first)))
    assert evaluator._split not in (name, other_name)
