"""ray_cluster.yaml is a valid `ray up` config for AWS that deploys configs/production.yaml and can place it.

Ray's own schema validator checks the file; then the checks Ray cannot make: every command deploys the
same config (production.yaml, which joins the cluster), and every actor kind and model replica that
config requests has exactly one node type that offers it (so Ray places it there and the autoscaler
knows which type to add), with room for as many as the config starts.
"""

from __future__ import annotations

import copy
import math
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from iasovoice.cli import build_parser
from iasovoice.config import AppConfig, load_config
from iasovoice.placement import instance_counts, resource_demands

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "ray_cluster.yaml"
PRODUCTION = "configs/production.yaml"
# Where each kind must land; the shared actors sit beside the gateway on the head.
EXPECTED_NODE_TYPE = {"call_actor": "call_worker", "llm": "llm_gpu_worker", "asr": "asr_gpu_worker"}


@pytest.fixture()
def raw() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


@pytest.fixture(scope="module")
def production() -> AppConfig:
    return load_config(ROOT / PRODUCTION)


def test_config_passes_rays_validator(raw: dict[str, Any]) -> None:
    validate_config(prepare_config(copy.deepcopy(raw)))


def test_validator_rejects_a_broken_copy(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["available_node_types"]["llm_gpu_worker"]["min_workres"] = 1  # typo: Ray forbids unknown keys
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))
    fractional = copy.deepcopy(raw)
    fractional["available_node_types"]["call_worker"]["resources"]["iasovoice_calls"] = 0.5  # Ray: integers
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(fractional))


def _commands(raw: dict[str, Any], key: str) -> str:
    return "\n".join(raw[key])


def test_every_command_deploys_the_production_config(raw: dict[str, Any], production: AppConfig) -> None:
    head = _commands(raw, "head_start_ray_commands")
    assert "ray start --head" in head
    assert head.index("ray start --head") < head.index("serve deploy configs/serve.yaml") < head.index("iasovoice --config")
    # The gateway's command line, parsed by the CLI's own parser (`serve --config x` would not parse).
    gateway = next(c for c in raw["head_start_ray_commands"] if "bin/iasovoice" in c)
    argv = shlex.split(gateway.split("bin/iasovoice", 1)[1].split(">", 1)[0])
    args = build_parser().parse_args(argv)
    assert args.command == "serve" and args.config == PRODUCTION
    # serve.yaml's builder reads the same file, for the app the gateway attaches to.
    serve = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    (app,) = serve["applications"]
    assert app["args"]["config"] == PRODUCTION and app["name"] == production.ray.serve_app_name
    # Rasa is trained with it on the head.
    assert f"iasovoice.dialogue.rasa_server {PRODUCTION}" in _commands(raw, "head_setup_commands")
    # And it joins the cluster these commands start, using the models `serve deploy` put there.
    assert production.ray.address == "auto" and production.ray.serve_models == "attach"


def test_gpu_nodes_install_the_gpu_extra_and_fetch_their_model(raw: dict[str, Any], production: AppConfig) -> None:
    common = raw["setup_commands"]
    assert "--python 3.11" in "\n".join(common) and "'.[gpu]'" not in "\n".join(common)  # CPU nodes: no vLLM
    assert raw["file_mounts"]["~/iasovoice"] == "."
    fetched = production.fetched_models()
    assert set(fetched) == {"llm", "asr"}
    for node_type, model in (("llm_gpu_worker", "llm"), ("asr_gpu_worker", "asr")):
        setup = raw["available_node_types"][node_type]["worker_setup_commands"]
        # A node type's list replaces setup_commands (Ray's rule), so it must start with them.
        assert setup[: len(common)] == common
        rest = "\n".join(setup[len(common):])
        assert "-e '.[gpu]'" in rest
        assert f"deploy/fetch_weights.py fetch --config {PRODUCTION} --model {model}" in rest
        assert raw["available_node_types"][node_type]["node_config"]["IamInstanceProfile"]
    assert "worker_setup_commands" not in raw["available_node_types"]["call_worker"]
    workers = _commands(raw, "worker_start_ray_commands")
    assert "--address=$RAY_HEAD_IP:6379" in workers


def _offers(node_resources: dict[str, float], demand: dict[str, float], count: int = 1) -> bool:
    return all(node_resources.get(name, 0) >= quantity * count for name, quantity in demand.items())


def test_each_request_has_exactly_one_node_type_with_room(raw: dict[str, Any], production: AppConfig) -> None:
    types = raw["available_node_types"]
    demands = resource_demands(production)
    counts = instance_counts(production)
    assert {"call_actor", "directory", "tts", "storage", "metrics", "dialogue", "escalation", "asr", "llm"} <= set(demands)
    on_head: dict[str, float] = {}
    for kind, demand in demands.items():
        # A custom resource pins every kind: nothing lands on a node (and keeps it alive) by chance.
        assert set(demand) - {"CPU", "GPU"}, f"{kind} requests no custom resource: {demand}"
        hosts = [name for name, node in types.items() if _offers(node["resources"], demand)]
        assert hosts == [EXPECTED_NODE_TYPE.get(kind, raw["head_node_type"])], (kind, demand, hosts)
        (host,) = hosts
        if host == raw["head_node_type"]:
            for name, quantity in demand.items():
                on_head[name] = on_head.get(name, 0) + quantity * counts[kind]
        else:
            # Enough nodes of the type, at the type's max_workers, for as many as the config starts.
            per_node = min(math.floor(types[host]["resources"].get(n, 0) / q) for n, q in demand.items())
            assert counts[kind] <= per_node * types[host]["max_workers"], (kind, per_node)
    assert _offers(types[raw["head_node_type"]]["resources"], on_head), on_head


def test_a_call_worker_is_full_by_calls_not_by_cpu(raw: dict[str, Any], production: AppConfig) -> None:
    """150 calls a node (memory-bound) must also fit its CPUs at each call's request, or CPU would bind."""
    node = raw["available_node_types"]["call_worker"]["resources"]
    call = resource_demands(production)["call_actor"]
    slots = node["iasovoice_calls"] / call["iasovoice_calls"]
    assert slots * call["CPU"] <= node["CPU"]
    assert production.call.pool_size < slots  # the warm pool alone never needs a second worker


def test_node_types(raw: dict[str, Any]) -> None:
    assert raw["provider"]["type"] == "aws"
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] > 0
    # Phi-4 in bf16 (27.3 GiB) needs the L40S's 48 GB; Whisper gets its own L4 (docs/deploy.md).
    assert types["llm_gpu_worker"]["node_config"]["InstanceType"].startswith("g6e.")
    assert types["asr_gpu_worker"]["node_config"]["InstanceType"].startswith(("g6.", "g6e."))
    for name in ("llm_gpu_worker", "asr_gpu_worker"):
        assert types[name]["resources"]["GPU"] >= 1
    assert types["call_worker"]["resources"].get("GPU", 0) == 0
    workers = [name for name in types if name != raw["head_node_type"]]
    for name in workers:
        assert 0 <= types[name]["min_workers"] <= types[name]["max_workers"] <= raw["max_workers"]
    assert sum(types[name]["max_workers"] for name in workers) >= raw["max_workers"]


def test_disks_are_encrypted(raw: dict[str, Any]) -> None:
    # Audio and notes are PHI; every node's root volume is encrypted.
    for node_type in raw["available_node_types"].values():
        for mapping in node_type["node_config"]["BlockDeviceMappings"]:
            assert mapping["Ebs"]["Encrypted"] is True
