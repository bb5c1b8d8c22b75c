"""Placement and Ray options from config: what reaches ray.init, the actors and the Serve deployments.

All without starting Ray: the options are built by pure functions (iasovoice/placement.py,
iasovoice.runtime.ray_init_args), and a Serve application is only bound here, never run.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from iasovoice.config import load_config
from iasovoice.errors import ConfigError
from iasovoice.placement import (
    ACTOR_KINDS,
    LOCAL_CUSTOM_RESOURCE_UNITS,
    actor_options,
    asr_deployment_options,
    llm_deployment_options,
    llm_max_ongoing_requests,
    local_resources,
)
from iasovoice.runtime import ray_init_args

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# What ray.init refuses when it joins an existing cluster (ray/_private/worker.py, "When connecting to an
# existing cluster, ... must not be provided"); include_dashboard is ignored there, so it stays local too.
JOIN_REFUSED = {"num_cpus", "num_gpus", "resources", "labels", "object_store_memory", "_system_config",
                "_enable_object_reconstruction", "_node_name", "include_dashboard"}


def test_the_embedded_default_requests_what_it_did_before() -> None:
    """A laptop run is unchanged: actors ask for nothing, models for their CPU, no custom resource."""
    config = load_config(CONFIGS / "app.yaml")
    for kind in ACTOR_KINDS:
        assert actor_options(config, kind) == {"num_cpus": 0.0, "num_gpus": 0.0}, kind
    assert asr_deployment_options(config.asr)["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert llm_deployment_options(config.llm)["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert asr_deployment_options(config.asr)["max_ongoing_requests"] == 16  # as before: max(16, 2 x 8)
    assert local_resources(config) == {}


def test_local_ray_init_args_size_a_new_ray() -> None:
    config = load_config(CONFIGS / "app.yaml")
    args = ray_init_args(config, cpu_count=2)
    assert args["address"] == "local"  # never silently a join (a `ray start` node, $RAY_ADDRESS)
    assert args["num_cpus"] == 2 and args["include_dashboard"] is False
    assert "resources" not in args
    assert args["runtime_env"] == {"worker_process_setup_hook": "iasovoice.logs.configure_worker_logging"}
    assert args["namespace"] == "iasovoice"
    pinned = load_config(CONFIGS / "app.yaml", ["ray.num_cpus=6"])
    assert ray_init_args(pinned, cpu_count=2)["num_cpus"] == 6
    assert ray_init_args(config, cpu_count=1)["num_cpus"] == 2  # the two model replicas' CPU each


def test_a_local_ray_has_the_cpus_the_placement_asks_for() -> None:
    """Fractional CPUs for call actors must not leave the warm pool (or capped calls) unplaceable."""
    config = load_config(CONFIGS / "production.yaml", ["ray.address=null", "ray.serve_models=deploy"])
    # ASR 2 + LLM 4 + 16 warm call actors x 0.05 = 6.8 -> 7
    assert ray_init_args(config, cpu_count=2)["num_cpus"] == 7
    capped = load_config(
        CONFIGS / "production.yaml", ["ray.address=null", "ray.serve_models=deploy", "call.max_active_calls=100"]
    )
    assert ray_init_args(capped, cpu_count=2)["num_cpus"] == 12  # + 100 x 0.05


def test_local_ray_offers_every_custom_resource_the_config_requests() -> None:
    """production.yaml's placement on one machine: a local Ray that lacked them would start nothing."""
    config = load_config(
        CONFIGS / "production.yaml",
        ["ray.address=null", "ray.serve_models=deploy", "ray.num_cpus=4"],
    )
    args = ray_init_args(config, cpu_count=2)
    assert args["address"] == "local" and args["num_cpus"] == 4
    assert args["resources"] == {
        name: float(LOCAL_CUSTOM_RESOURCE_UNITS)
        for name in ("iasovoice_asr_gpu", "iasovoice_calls", "iasovoice_head", "iasovoice_llm_gpu")
    }


@pytest.mark.parametrize("address", ["auto", "ray://head.internal:10001", "10.0.0.5:6379"])
def test_joining_a_cluster_passes_nothing_ray_refuses(address: str) -> None:
    config = load_config(
        CONFIGS / "app.yaml",
        [f"ray.address={address}", "server.stream_tls.private_network=true", "dialogue.rasa.manage=false"],
    )
    args = ray_init_args(config, cpu_count=2)
    assert args["address"] == address
    assert not JOIN_REFUSED & set(args), set(args)
    assert "worker_process_setup_hook" in args["runtime_env"]  # the workers log as the server does
    assert args["namespace"] == "iasovoice"


def test_cluster_settings_that_cannot_work_are_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="ray.num_cpus sizes a local Ray"):
        load_config(CONFIGS / "production.yaml", ["ray.num_cpus=8"])
    with pytest.raises(ConfigError, match="serve_models: attach"):
        load_config(CONFIGS / "app.yaml", ["ray.serve_models=attach"])
    with pytest.raises(ConfigError, match="cannot reach through Ray Client"):
        load_config(CONFIGS / "production.yaml", ["ray.address=ray://head:10001"])


def test_production_requests_reach_the_options() -> None:
    config = load_config(CONFIGS / "production.yaml")
    assert actor_options(config, "call_actor") == {
        "num_cpus": 0.05, "num_gpus": 0.0, "resources": {"iasovoice_calls": 1.0}
    }
    for kind in ("directory", "model_router", "tts", "storage", "metrics", "dialogue", "escalation"):
        assert actor_options(config, kind)["resources"] == {"iasovoice_head": 1.0}
    llm = llm_deployment_options(config.llm)
    assert llm["ray_actor_options"] == {"num_cpus": 4.0, "num_gpus": 1.0, "resources": {"iasovoice_llm_gpu": 1.0}}
    assert llm["max_ongoing_requests"] == config.llm.vllm.max_num_seqs == 64
    asr = asr_deployment_options(config.asr)
    assert asr["ray_actor_options"]["resources"] == {"iasovoice_asr_gpu": 1.0}
    assert asr["max_ongoing_requests"] == 32 and asr["user_config"]["max_batch_size"] == 16


def test_the_bound_deployments_carry_the_options() -> None:
    """What `serve deploy configs/serve.yaml` would deploy: bound, not run."""
    from deployments import ASR_DEPLOYMENT, LLM_DEPLOYMENT
    from deployments.app import build_app

    app = build_app({"config": "configs/production.yaml"})
    ingress = app._bound_deployment
    assert ingress.ray_actor_options["resources"] == {"iasovoice_head": 1.0}
    bound = {arg._bound_deployment.name: arg._bound_deployment for arg in ingress.init_args}
    llm, asr = bound[LLM_DEPLOYMENT], bound[ASR_DEPLOYMENT]
    assert llm.max_ongoing_requests == 64
    assert llm.ray_actor_options["resources"] == {"iasovoice_llm_gpu": 1.0} and llm.ray_actor_options["num_gpus"] == 1
    assert asr.max_ongoing_requests == 32 and asr.ray_actor_options["resources"] == {"iasovoice_asr_gpu": 1.0}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["llm.engine=llama-cpp"], 2),
        (["llm.engine=standin"], 5),
        (["llm.engine=vllm", "llm.num_gpus=1", "llm.vllm.max_num_seqs=96"], 96),
        (["llm.engine=vllm", "llm.num_gpus=1", "llm.max_ongoing_requests=40"], 40),
        (["llm.engine=llama-cpp", "llm.max_ongoing_requests=1"], 1),
    ],
)
def test_llm_in_flight_follows_the_engine(overrides: list[str], expected: int) -> None:
    config = load_config(CONFIGS / "app.yaml", overrides)
    assert llm_max_ongoing_requests(config.llm) == expected
    assert llm_deployment_options(config.llm)["max_ongoing_requests"] == expected


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ("placement.call_actor.resources={CPU: 1}", "placement.call_actor.resources", "num_cpus / num_gpus"),
        ("placement.tts.resources={iasovoice_head: 0}", "placement.tts.resources", "must be > 0"),
        ("placement.tts.resources={iasovoice_head: 0.00001}", "placement.tts.resources", "steps of 0.0001"),
        ("placement.call_actor.num_cpus=-1", "placement.call_actor.num_cpus", ">= 0"),
        ("placement.storage.num_gpus=1.5", "placement.storage.num_gpus", "whole number"),
        ("placement.dialog={}", "placement.dialog", "unknown key"),
        ("llm.resources={node:10.0.0.1: 1}", "llm.resources", "Ray's own resources"),
        ("llm.vllm.tensor_parallel_size=2", "llm.vllm", "placement group"),
        ("llm.engine=vllm", "llm", "llm.num_gpus: 1"),
        ("weights.source=https://example.org/models", "weights", "s3://bucket/prefix/"),
        ("weights.root=models", "weights", "absolute"),
    ],
)
def test_bad_placement_is_named_at_start(override: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / "app.yaml", [override])
    assert f"  {key}" in str(error.value) and message in str(error.value)


def test_fetched_models_must_land_where_the_engines_read_them() -> None:
    config = load_config(CONFIGS / "production.yaml")
    assert config.fetched_models() == {"llm": "phi-4", "asr": "whisper/large-v3.pt"}
    with pytest.raises(ConfigError, match="llm.vllm.model must lie under weights.root"):
        load_config(CONFIGS / "production.yaml", ["llm.vllm.model=/opt/phi-4"])
    with pytest.raises(ConfigError, match="asr.model_path must lie under weights.root"):
        load_config(CONFIGS / "production.yaml", ["asr.model_path=/opt/whisper.pt"])


def test_a_relative_config_path_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serve builds serve.yaml's app in a worker started in the home directory, not the checkout."""
    monkeypatch.chdir(tmp_path)
    assert load_config("configs/production.yaml").ray.address == "auto"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "production.yaml").write_text("base: " + str(CONFIGS / "app.yaml") + "\n")
    assert load_config("configs/production.yaml").ray.address is None  # the working directory wins


def test_the_vllm_engine_gets_its_batch_size_and_quantization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine arguments built from llm.vllm, captured by a stand-in for vLLM (the CPU path has none)."""
    from iasovoice.factory import build_llm_engine

    captured: dict[str, Any] = {}

    class Engine:
        @classmethod
        def from_engine_args(cls, args: dict[str, Any]) -> Engine:
            captured.update(args)
            return cls()

    module = types.ModuleType("vllm")
    module.AsyncEngineArgs = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    module.AsyncLLMEngine = Engine  # type: ignore[attr-defined]
    module.SamplingParams = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    config = load_config(CONFIGS / "production.yaml", [f"llm.vllm.model={tmp_path}", "weights.source=null"])
    build_llm_engine(config.llm)
    assert captured["max_num_seqs"] == 64 and captured["max_model_len"] == 16384
    assert captured["dtype"] == "bfloat16" and "quantization" not in captured
    fp8 = load_config(
        CONFIGS / "production.yaml",
        [f"llm.vllm.model={tmp_path}", "weights.source=null", "llm.vllm.quantization=fp8"],
    )
    build_llm_engine(fp8.llm)
    assert captured["quantization"] == "fp8"
