"""Every registered model builds, runs on its input shape and is selectable as ``model=<name>``."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from spikingjelly.activation_based import functional

from aqsvit.cli import CONF_DIR, builder_kwargs, models_listing
from aqsvit.models import create_model, list_models, model_info, model_spec
from aqsvit.quant import quantizable_layers

SMALL = {"embed_dims": 32, "num_heads": 2, "depths": 1}  # big models, shrunk for a fast forward


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_runs_and_resolves_as_a_config(name):
    spec = model_spec(name)
    if spec.kwargs["embed_dims"] > 96:  # published sizes: the full size builds; the forward runs small
        create_model(spec)
        spec = model_spec(name, **SMALL)
    model = create_model(spec).eval()
    assert quantizable_layers(model)
    x = torch.rand(2, *spec.input_shape)
    with torch.no_grad():
        out = model(x)
    functional.reset_net(model)
    assert out.shape == (2, spec.kwargs["num_classes"]) and torch.isfinite(out).all()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=builder_kwargs([f"model={name}", "model.kwargs.num_classes=7"]))
    assert cfg.model.name == name
    assert model_spec(cfg.model.name, **cfg.model.kwargs).kwargs["num_classes"] == 7


def test_registry_says_which_models_are_faithful_and_their_preset():
    assert model_info("spikformer_imagenet_8_512").reference.startswith("ZK-Zhou/spikformer@")
    assert model_info("spikformer_imagenet_8_512").preprocess == "imagenet"
    assert model_info("spikformer_cifar100_4_384").preprocess == "cifar100"
    assert model_info("spikformer_digits").reference is None
    listing = models_listing().splitlines()
    assert len(listing) == len(list_models()) + 1
    assert any("spikformer_cifar10dvs_2_256" in line and "cifar10dvs/model.py" in line for line in listing)


def test_cli_search_cfg_job_with_builder_kwargs_without_plus():
    result = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", "model=spikformer_imagenet_8_512",
                             "model.kwargs.depths=2", "--cfg", "job"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "name: spikformer_imagenet_8_512" in result.stdout and "depths: 2" in result.stdout
