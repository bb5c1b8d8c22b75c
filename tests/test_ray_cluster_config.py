"""ray_cluster.yaml is a valid `ray up` config for AWS, checked with Ray's own schema validator."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[1] / "ray_cluster.yaml"


@pytest.fixture()
def raw() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def test_config_passes_rays_validator(raw: dict[str, Any]) -> None:
    validate_config(prepare_config(copy.deepcopy(raw)))


def test_validator_rejects_a_broken_copy(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["available_node_types"]["gpu_worker"]["min_workres"] = 1  # typo: Ray forbids unknown keys
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_node_types(raw: dict[str, Any]) -> None:
    assert raw["provider"]["type"] == "aws"
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] > 0
    gpu = types["gpu_worker"]
    assert gpu["resources"]["GPU"] >= 1
    assert gpu["node_config"]["InstanceType"].split(".")[0] in {"g5", "g6", "g6e"}
    cpu = types["cpu_worker"]
    assert cpu["resources"].get("GPU", 0) == 0 and cpu["resources"]["CPU"] >= 4
    for name in ("gpu_worker", "cpu_worker"):
        assert 0 <= types[name]["min_workers"] <= types[name]["max_workers"] <= raw["max_workers"]
    assert types["gpu_worker"]["max_workers"] + types["cpu_worker"]["max_workers"] >= raw["max_workers"]


def test_setup_installs_the_project_with_gpu_extra_and_starts_serve(raw: dict[str, Any]) -> None:
    setup = "\n".join(raw["setup_commands"])
    assert "-e '.[gpu]'" in setup and "--python 3.11" in setup
    assert raw["file_mounts"]["~/iasovoice"] == "."
    head = "\n".join(raw["head_start_ray_commands"])
    assert "ray start --head" in head
    assert "serve deploy configs/serve.yaml" in head
    assert "iasovoice serve --config configs/app.yaml" in head
    assert head.index("ray start --head") < head.index("serve deploy")
    workers = "\n".join(raw["worker_start_ray_commands"])
    assert "--address=$RAY_HEAD_IP:6379" in workers


def test_disks_are_encrypted(raw: dict[str, Any]) -> None:
    # Audio and notes are PHI; every node's root volume is encrypted.
    for node_type in raw["available_node_types"].values():
        for mapping in node_type["node_config"]["BlockDeviceMappings"]:
            assert mapping["Ebs"]["Encrypted"] is True
