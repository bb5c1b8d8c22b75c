"""The proof on one machine: ray_cluster.yaml's node types on Ray's fake multi-node provider.

A real `iasovoice serve` on stand-in engines joins, through its config (`ray.address`), a fake cluster
whose node types are ray_cluster.yaml's (tests/fake_cluster.py shrinks only the quantities), with
configs/production.yaml's placement. Ray's state API then says where everything landed: call actors on
call workers, each model on its own GPU node type, the shared actors on the head. More concurrent calls
than the running call worker has slots make the autoscaler add a call worker, and once the calls end and
it idles, remove it again. `ray status` before, during and after goes to the test's tmp dir (and stdout
with -s): docs/deploy.md quotes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iasovoice.audio.files import load_audio
from iasovoice.client import CallReport, place_call
from iasovoice.config import AppConfig, load_config
from iasovoice.placement import ACTOR_KINDS
from tests.fake_cluster import FAKE_HEAD_TYPE, FakeCluster, fake_cluster
from tests.paths import REPO, REPO_AUDIO
from tests.server import STANDIN_CALLS, RunningServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

PRODUCTION = load_config(REPO / "configs" / "production.yaml")
# The one custom resource a call actor requests in production (iasovoice_calls: 1).
(CALL_RESOURCE,) = PRODUCTION.placement.call_actor.resources
CALL_SLOTS = 3  # per call worker; ray_cluster.yaml's 150 would need 150 calls on 2 cores
# Calls at once: with the warm actor (call.pool_size 1) they need 5 slots, more than one call worker's 3.
CALLS = CALL_SLOTS + 1
QUANTITIES = {
    "head": {"CPU": 2},
    "call_worker": {"CPU": 1, CALL_RESOURCE: CALL_SLOTS},
    "llm_gpu_worker": {"CPU": 1},
    "asr_gpu_worker": {"CPU": 1},
}
MAX_WORKERS = {"call_worker": 2, "llm_gpu_worker": 1, "asr_gpu_worker": 1}
IDLE_TIMEOUT_MINUTES = 0.1  # ray_cluster.yaml's 10 minutes would not fit a test
TURNS = 3  # ~20 s of talk per call: longer than a fake node takes to start, so some land on the new one
# The actors by Ray class name -> their kind in production.yaml (`placement.<kind>`, or `asr:`/`llm:`).
KIND_OF_CLASS = {
    "CallActor": "call_actor", "CallDirectory": "directory", "ModelRouter": "model_router", "TTSActor": "tts",
    "StorageActor": "storage", "MetricsActor": "metrics",
    "ServeReplica:iasovoice:VoiceModels": "models_ingress",
    "ServeReplica:iasovoice:WhisperASR": "asr", "ServeReplica:iasovoice:LLM": "llm",
}
# Where each kind must land (as tests/test_ray_cluster_config.py); the rest share the head.
NODE_TYPE_OF_KIND = {"call_actor": "call_worker", "asr": "asr_gpu_worker", "llm": "llm_gpu_worker"}


def production_placement(production: AppConfig) -> list[str]:
    """`--set` overrides giving a stand-in server production's placement.

    Every actor kind's request as production.yaml has it, and the models' custom resource and GPU; not
    the models' CPUs (2 and 4), which the shrunk GPU nodes (1 CPU) could not hold, so STANDIN_CALLS' 0
    stays. production.yaml itself cannot run here (S3, Polly, Rasa, TLS files).
    """
    overrides = [f"placement.{kind}={json.dumps(getattr(production.placement, kind).model_dump())}"
                 for kind in ACTOR_KINDS]
    for section in ("asr", "llm"):
        model = getattr(production, section)
        overrides += [f"{section}.resources={json.dumps(model.resources)}",
                      f"{section}.num_gpus={model.num_gpus}"]
    return overrides


def write_status(cluster: FakeCluster, path: Path) -> str:
    status = cluster.ray_status()
    path.write_text(status)
    print(f"\n--- {path.name}\n{status}")
    return status


def call_worker_nodes(cluster: FakeCluster, state: Mapping[str, Any]) -> int:
    return cluster.alive_nodes(state, "call_worker")


def node_of(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["node_id"]: node for node in state["nodes"]}


async def concurrent_calls(server: RunningServer, turns: list[np.ndarray]) -> list[tuple[CallReport, float]]:
    """All calls at once; each with the seconds its caller waited for the greeting (for an actor, first)."""

    async def one(index: int) -> tuple[CallReport, float]:
        call_id = f"fake-cluster-{index}"
        started = time.monotonic()
        report = await place_call(server.url, call_id, turns, 8000, token=server.token(call_id),
                                  reply_timeout_s=120.0, note_timeout_s=120.0)
        greeting_s = report.agent_audio[0][0] - started if report.agent_audio else float("inf")
        return report, greeting_s

    return list(await asyncio.gather(*(one(index) for index in range(CALLS))))


def test_nodes_by_type_and_a_call_worker_added_under_load(tmp_path: Path) -> None:
    started = time.monotonic()
    with fake_cluster(tmp_path / "cluster", QUANTITIES, MAX_WORKERS, IDLE_TIMEOUT_MINUTES) as cluster:
        # The server starts while the autoscaler starts the worker nodes (min_workers): its models and
        # warm actor wait for theirs, as they would on a new cluster.
        overrides = [
            *STANDIN_CALLS, *production_placement(PRODUCTION),
            f"ray.address={cluster.gcs_address}",
            "server.stream_tls.private_network=true",  # the fake nodes share this machine's (private) address
            "call.pool_size=1",
        ]
        server = start_server(tmp_path / "server", overrides, timeout_s=300, env=cluster.client_env)
        try:
            cluster.wait_for_min_workers()
            up_s = time.monotonic() - started
            before = cluster.snapshot()
            write_status(cluster, tmp_path / "ray-status-before.txt")
            assert call_worker_nodes(cluster, before) == 1, "call_worker starts at its min_workers"
            check_placement(before)
            summary = load_and_idle(cluster, server, tmp_path)
        finally:
            code = stop_server(server)
        assert code == 0, f"server did not shut down cleanly ({code}):\n{server.log_tail()}"
    assert not cluster.processes(), "the fake cluster left processes behind"
    print(f"\ncluster and server up in {up_s:.0f} s; {summary}; statuses in {tmp_path}; "
          f"wall time {time.monotonic() - started:.0f} s")


def check_placement(state: Mapping[str, Any]) -> None:
    """Each live actor on its node type, found by name and by what the node declares: the custom
    resources (and GPU) that production.yaml has the actor's kind request."""
    nodes = node_of(state)
    alive = {actor["class_name"]: actor for actor in state["actors"] if actor["state"] == "ALIVE"}
    missing = ({*KIND_OF_CLASS, "ServeController"}) - set(alive)
    assert not missing, f"actors not running: {sorted(missing)}"
    for actor in state["actors"]:
        kind = KIND_OF_CLASS.get(actor["class_name"])
        if actor["state"] != "ALIVE" or kind is None:
            continue
        node = nodes.get(actor["node_id"])
        expected = NODE_TYPE_OF_KIND.get(kind, FAKE_HEAD_TYPE)
        assert node is not None and node["type"] == expected, (
            f"{actor['class_name']} on {node}, not {expected}")
        request = getattr(PRODUCTION, kind) if kind in ("asr", "llm") else getattr(PRODUCTION.placement, kind)
        assert request.resources and set(request.resources) <= set(node["resources"]), (actor, node)
        assert node["resources"].get("GPU", 0) >= request.num_gpus, f"{kind}: its node type's (fake) GPU"
    # Serve's own controller is not placed by config: Serve pins it to the head.
    assert nodes[alive["ServeController"]["node_id"]]["type"] == FAKE_HEAD_TYPE


def load_and_idle(cluster: FakeCluster, server: RunningServer, tmp_path: Path) -> str:
    """More calls at once than a call worker has slots: a second one is added, and removed once idle."""
    speech = load_audio(REPO_AUDIO / "LDC93S1_8k.wav", 8000)
    calls_started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        calls = pool.submit(asyncio.run, concurrent_calls(server, [speech] * TURNS))
        grown = cluster.wait_for(lambda state: call_worker_nodes(cluster, state) >= 2,
                                 "a second call_worker under load", timeout_s=180, every_s=3)
        scaled_up_s = time.monotonic() - calls_started
        write_status(cluster, tmp_path / "ray-status-under-load.txt")
        results = calls.result(timeout=300)
    calls_s = time.monotonic() - calls_started
    for report, _ in results:
        assert report.errors == [] and report.ended == "completed" and report.note_ready, (
            f"{report.call_id}: {report.errors} {report.ended}\n{server.log_tail()}")
    assert call_worker_nodes(cluster, grown) <= MAX_WORKERS["call_worker"]

    # Ray keeps finished actors with the node they ran on: every call's, and the warm ones.
    after = cluster.snapshot()
    nodes = node_of(after)
    call_actors = [actor for actor in after["actors"] if actor["class_name"] == "CallActor"]
    assert len(call_actors) >= CALLS + 1, "one actor per call and the warm one"
    hosted: dict[str, int] = {}
    for actor in call_actors:
        node = nodes.get(actor["node_id"])
        assert node is not None and node["type"] == "call_worker", f"call actor off the call workers: {node}"
        assert CALL_RESOURCE in node["resources"]
        hosted[actor["node_id"]] = hosted.get(actor["node_id"], 0) + 1
    assert len(hosted) >= 2, "call actors ran on the added call worker too"

    idle_started = time.monotonic()
    idle = cluster.wait_for(lambda state: call_worker_nodes(cluster, state) == 1,
                            "the idle call_worker removed", timeout_s=180, every_s=3)
    scaled_down_s = time.monotonic() - idle_started
    write_status(cluster, tmp_path / "ray-status-after-idle.txt")
    alive = {node["node_id"] for node in idle["nodes"] if node["state"] == "ALIVE"}
    per_node = ", ".join(f"{count} on {'the kept' if node_id in alive else 'the removed'} one"
                         for node_id, count in sorted(hosted.items(), key=lambda item: -item[1]))
    waits = ", ".join(f"{greeting:.1f}" for _, greeting in sorted(results, key=lambda result: result[1]))
    return (f"{CALLS} calls in {calls_s:.0f} s, the second call_worker up {scaled_up_s:.0f} s after "
            f"they began; greeting waits {waits} s; call actors {per_node}; the idle call_worker "
            f"removed {scaled_down_s:.0f} s after the calls ended")
