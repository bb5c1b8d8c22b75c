"""Bring the whole system up on Ray (local by default) and take it down again.

Order matters: the models (Serve) and IO actors first, then the warm pool whose actors look them up,
then the greeting is synthesized once so the first caller hears it at once, and only then does the
gateway accept calls. Every step reports progress, since the first start joins a 1.1 GB model file.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

import ray
from ray import serve
from ray.actor import ActorHandle
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors import names
from iasovoice.config import AppConfig
from iasovoice.dialogue.rasa_server import RasaService
from iasovoice.errors import IasoVoiceError
from iasovoice.placement import actor_options, cpus_requested, local_resources
from iasovoice.stream_tls import client_context

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class ModelsNotReadyError(IasoVoiceError):
    """`ray.serve_models: attach` and the models app is not running (failed, or not deployed in time)."""


def _local_cpus(config: AppConfig, cpu_count: int | None = None) -> int:
    """Logical CPUs for a local Ray: enough for what the config requests (both model deployments, and any
    CPU share the placement gives actors) even on a 2-core laptop."""
    if config.ray.num_cpus:
        return config.ray.num_cpus
    return max(cpu_count or os.cpu_count() or 1, math.ceil(cpus_requested(config) - 1e-9))


def ray_init_args(config: AppConfig, cpu_count: int | None = None) -> dict[str, Any]:
    """The keyword arguments of `ray.init` for this config, built without starting Ray (so it is tested).

    `ray.address: null` starts a new local Ray, sized here: its CPUs, and every custom resource the
    config's placement asks for (a one-node Ray must offer them, or those actors would wait forever).
    It is passed as "local" so that a node where `ray start` runs, or a stray $RAY_ADDRESS, does not
    turn it into a join that Ray then refuses for the sizing arguments. Any other address joins a
    cluster, whose nodes declare their own resources: Ray raises ValueError for num_cpus, num_gpus,
    resources or object_store_memory there, so only what a joining driver may set goes in.
    """
    ray_cfg = config.ray
    args: dict[str, Any] = {
        "namespace": ray_cfg.namespace,
        "logging_level": logging.WARNING,
        "log_to_driver": os.environ.get("IASOVOICE_RAY_LOGS") == "1",
        # Workers (call actors, IO actors) log at INFO into the session's worker-*.err files (see
        # iasovoice/logs.py for why not Ray's LoggingConfig).
        "runtime_env": {"worker_process_setup_hook": "iasovoice.logs.configure_worker_logging"},
    }
    if ray_cfg.address:
        return {"address": ray_cfg.address, **args}
    local: dict[str, Any] = {"address": "local", "num_cpus": _local_cpus(config, cpu_count), "include_dashboard": False}
    resources = local_resources(config)
    if resources:
        local["resources"] = resources
    return {**local, **args}


class Runtime:
    def __init__(self, config: AppConfig, progress: Progress | None = None) -> None:
        self.config = config
        self._progress = progress or (lambda message: log.info("%s", message))
        self.directory: ActorHandle | None = None
        self.storage: ActorHandle | None = None
        self.metrics: ActorHandle | None = None
        self.tts: list[ActorHandle] = []
        self.routers: list[ActorHandle] = []
        self.dialogue: list[ActorHandle] = []
        self.escalation: ActorHandle | None = None
        self.rasa: RasaService | None = None
        self._started_ray = False
        self._deployed_models = False

    def _step(self, message: str) -> float:
        self._progress(message)
        return time.perf_counter()

    def start(self) -> None:
        cfg = self.config
        if cfg.server.transport == "stream":
            # The gateway's stream TLS files are read now: a missing or bad one stops here, key named,
            # not at the first call (the actors read the same files when each call is bound).
            client_context(cfg.server.stream_tls)
        if cfg.dialogue.engine == "rasa" and cfg.dialogue.rasa.manage:
            # Rasa loads TensorFlow for ~20 s: it starts first and comes up while the models load.
            self.rasa = RasaService(cfg.dialogue.rasa, self._progress)
            self.rasa.start()
        started = self._step("starting Ray" + (f" at {cfg.ray.address}" if cfg.ray.address else " (local)"))
        if not ray.is_initialized():
            ray.init(**ray_init_args(cfg))
            self._started_ray = True
        # Operators (and the fault tests) reach the cluster's actors with this, e.g. `ray.init(address=...)`.
        log.info("Ray cluster at %s (namespace %s)", ray.get_runtime_context().gcs_address, cfg.ray.namespace)

        self._start_models()
        from actors.model_router import ModelRouter

        self.routers = [
            ModelRouter.options(
                name=names.model_router_name(i), get_if_exists=True, **actor_options(cfg, "model_router")
            ).remote(cfg.ray.serve_app_name)
            for i in range(cfg.ray.model_routers)
        ]
        ray.get([router.ready.remote() for router in self.routers])

        self._step("starting IO actors (storage, metrics, text-to-speech)")
        from actors.metrics_actor import MetricsActor
        from actors.storage_actor import StorageActor
        from actors.tts_actor import TTSActor

        self.storage = StorageActor.options(
            name=names.STORAGE, get_if_exists=True, **actor_options(cfg, "storage")
        ).remote(cfg.storage)
        self.metrics = MetricsActor.options(
            name=names.METRICS, get_if_exists=True, **actor_options(cfg, "metrics")
        ).remote(cfg.metrics)
        self.tts = [
            TTSActor.options(name=names.tts_actor_name(i), get_if_exists=True, **actor_options(cfg, "tts")).remote(cfg.tts)
            for i in range(cfg.tts.num_actors)
        ]
        ray.get([self.storage.exists.remote("warmup", "note"), *(t.engine_name.remote() for t in self.tts)])
        self._start_dialogue_actors()

        self._step("synthesizing the greeting and the safety scripts once (so callers never wait for them)")
        phrases = (cfg.call.greeting, cfg.dialogue.safety.emergency_message, cfg.dialogue.safety.crisis_message)
        ray.get([
            t.synthesize.remote(text, cfg.call.voice, rate) for t in self.tts for rate in (8000, 16000) for text in phrases
        ])

        self._step(f"warming {cfg.call.pool_size} call actors")
        from actors.directory import CallDirectory

        self.directory = CallDirectory.options(
            name=names.DIRECTORY, get_if_exists=True, **actor_options(cfg, "directory")
        ).remote(cfg)
        ray.get(self.directory.warm.remote())
        if self.rasa is not None:
            self.rasa.wait_ready()
        self._progress(f"ready in {time.perf_counter() - started:.1f} s")

    def _start_dialogue_actors(self) -> None:
        cfg = self.config
        if cfg.dialogue.safety.set_contact_attributes:
            from actors.escalation_actor import EscalationActor

            self.escalation = EscalationActor.options(
                name=names.ESCALATION, get_if_exists=True, **actor_options(cfg, "escalation")
            ).remote(cfg.connect)
        if cfg.dialogue.engine != "rasa":
            self._progress("dialogue: safety rules and the LLM only (dialogue.engine: rules)")
            return
        from actors.dialogue_actor import DialogueActor

        options = actor_options(cfg, "dialogue")
        if cfg.dialogue.rasa.manage:
            # The managed Rasa listens on this node's loopback: its clients must run on this node.
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.dialogue = [
            DialogueActor.options(name=names.dialogue_actor_name(i), get_if_exists=True, **options).remote(cfg.dialogue)
            for i in range(cfg.dialogue.num_actors)
        ]

    def _start_models(self) -> None:
        """Deploy the models app from this config, or (`ray.serve_models: attach`) wait for the deployed one."""
        cfg = self.config
        if cfg.ray.serve_models == "deploy":
            self._step("loading models (Whisper speech-to-text, LLM) as Ray Serve deployments")
            from deployments.app import build_models_app

            serve.start(proxy_location="Disabled")
            serve.run(build_models_app(cfg), name=cfg.ray.serve_app_name, route_prefix=None)
            self._deployed_models = True
            return
        self._step(f"waiting for the models app {cfg.ray.serve_app_name!r} (deployed with serve deploy)")
        deadline = time.monotonic() + cfg.ray.models_ready_timeout_s
        last = None
        while True:
            app = serve.status().applications.get(cfg.ray.serve_app_name)
            status = str(app.status.value if app is not None else "NOT_DEPLOYED")
            if status == "RUNNING":
                return
            if status in ("DEPLOY_FAILED", "DELETING"):
                message = app.message if app is not None else ""
                raise ModelsNotReadyError(f"Serve app {cfg.ray.serve_app_name!r} is {status}: {message}")
            if status != last:
                self._progress(f"models app: {status}")
                last = status
            if time.monotonic() > deadline:
                raise ModelsNotReadyError(
                    f"Serve app {cfg.ray.serve_app_name!r} still {status} after {cfg.ray.models_ready_timeout_s:.0f} s "
                    "(ray.models_ready_timeout_s); was `serve deploy configs/serve.yaml` run? (ray_cluster.yaml)"
                )
            time.sleep(5)

    def stop(self) -> None:
        """Flush metrics, stop Serve, Rasa and, if we started it, Ray; no processes are left behind."""
        if self.rasa is not None:
            self.rasa.stop()
            self.rasa = None
        if not ray.is_initialized():
            return
        try:
            if self.metrics is not None:
                ray.get(self.metrics.flush.remote(), timeout=10)
        except Exception as error:  # noqa: BLE001 - shutting down regardless
            log.warning("metrics flush on shutdown failed: %s", error)
        try:
            if self._deployed_models:
                # Models deployed by `serve deploy` (attach) belong to the cluster, not to this gateway.
                serve.shutdown()
        finally:
            if self._started_ray:
                ray.shutdown()
