"""docker-compose file validity and the per-worker device/thread pinning."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch
import yaml

from aqsvit.devices import pin_worker
from aqsvit.errors import AqsvitError


def compose_config() -> dict:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required in CI (.ci/run installs it)")
        pytest.skip("docker-compose not installed")
    result = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config"],
                            capture_output=True, text=True, env={**os.environ, "POSTGRES_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_shares_one_study():
    services = compose_config()["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert len(workers) >= 2
    gpus = []
    for name, service in workers.items():
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1 and len(devices[0]["device_ids"]) == 1 and "gpu" in devices[0]["capabilities"]
        gpus += devices[0]["device_ids"]
        assert service["environment"]["AQSVIT_STORAGE"] == services["dashboard"]["environment"]["AQSVIT_STORAGE"]
        assert "storage=postgres" in service["command"]
    assert len(set(gpus)) == len(gpus), "two workers on one GPU"
    assert "healthcheck" in services["postgres"]
    ports = services["dashboard"]["ports"]
    assert all(str(p.get("host_ip", p) if isinstance(p, dict) else p).startswith("127.0.0.1") for p in ports)


def test_broken_compose_file_fails(tmp_path):
    compose_config()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("version: '3.8'\nservices:\n  w:\n    image: x\n    deploy: [not, a, mapping]\n")
    result = subprocess.run(["docker-compose", "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert result.returncode != 0


def test_cpu_workers_share_the_cores():
    before = torch.get_num_threads()
    try:
        cores = os.cpu_count() or 1
        assert pin_worker("cpu", worker=1, workers=2) == "cpu"
        assert torch.get_num_threads() == max(1, cores // 2)
        pin_worker("cpu", worker=0, workers=1)
        assert torch.get_num_threads() == cores
        if not torch.cuda.is_available():
            assert pin_worker("auto", worker=3, workers=4) == "cpu"
            with pytest.raises(AqsvitError, match="device: got 'cuda'"):
                pin_worker("cuda")
        with pytest.raises(AqsvitError, match="device: got 'tpu'; allowed: auto, cpu"):
            pin_worker("tpu")
    finally:
        torch.set_num_threads(before)
