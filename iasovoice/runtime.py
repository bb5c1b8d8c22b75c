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

from actors import names
from iasovoice.config import AppConfig
from iasovoice.dialogue.rasa_server import RasaService
from iasovoice.stream_tls import client_context

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _local_cpus(config: AppConfig) -> int:
    """Logical CPUs for a local Ray: enough for both model deployments even on a 2-core laptop."""
    if config.ray.num_cpus:
        return config.ray.num_cpus
    needed = config.asr.num_cpus * config.asr.num_replicas + config.llm.num_cpus * config.llm.num_replicas
    return max(os.cpu_count() or 1, math.ceil(needed))


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
            init_args: dict[str, Any] = {
                "namespace": cfg.ray.namespace,
                "include_dashboard": False,
                "logging_level": logging.WARNING,
                "log_to_driver": os.environ.get("IASOVOICE_RAY_LOGS") == "1",
                # Workers (call actors, IO actors) log at INFO into the session's worker-*.err files.
                "runtime_env": {"worker_process_setup_hook": "iasovoice.logs.configure_worker_logging"},
            }
            if cfg.ray.address:
                init_args["address"] = cfg.ray.address
            else:
                init_args["num_cpus"] = _local_cpus(cfg)
            ray.init(**init_args)
            self._started_ray = True
        # Operators (and the fault tests) reach the cluster's actors with this, e.g. `ray.init(address=...)`.
        log.info("Ray cluster at %s (namespace %s)", ray.get_runtime_context().gcs_address, cfg.ray.namespace)

        self._step("loading models (Whisper speech-to-text, LLM) as Ray Serve deployments")
        from deployments.app import build_models_app

        serve.start(proxy_location="Disabled")
        serve.run(build_models_app(cfg), name=cfg.ray.serve_app_name, route_prefix=None)
        from actors.model_router import ModelRouter

        self.routers = [
            ModelRouter.options(name=names.model_router_name(i), get_if_exists=True).remote(cfg.ray.serve_app_name)
            for i in range(cfg.ray.model_routers)
        ]
        ray.get([router.ready.remote() for router in self.routers])

        self._step("starting IO actors (storage, metrics, text-to-speech)")
        from actors.metrics_actor import MetricsActor
        from actors.storage_actor import StorageActor
        from actors.tts_actor import TTSActor

        self.storage = StorageActor.options(name=names.STORAGE, get_if_exists=True).remote(cfg.storage)
        self.metrics = MetricsActor.options(name=names.METRICS, get_if_exists=True).remote(cfg.metrics)
        self.tts = [
            TTSActor.options(name=names.tts_actor_name(i), get_if_exists=True).remote(cfg.tts)
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

        self.directory = CallDirectory.options(name=names.DIRECTORY, get_if_exists=True).remote(cfg)
        ray.get(self.directory.warm.remote())
        if self.rasa is not None:
            self.rasa.wait_ready()
        self._progress(f"ready in {time.perf_counter() - started:.1f} s")

    def _start_dialogue_actors(self) -> None:
        cfg = self.config
        if cfg.dialogue.safety.set_contact_attributes:
            from actors.escalation_actor import EscalationActor

            self.escalation = EscalationActor.options(name=names.ESCALATION, get_if_exists=True).remote(cfg.connect)
        if cfg.dialogue.engine != "rasa":
            self._progress("dialogue: safety rules and the LLM only (dialogue.engine: rules)")
            return
        from actors.dialogue_actor import DialogueActor

        self.dialogue = [
            DialogueActor.options(name=names.dialogue_actor_name(i), get_if_exists=True).remote(cfg.dialogue)
            for i in range(cfg.dialogue.num_actors)
        ]

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
            serve.shutdown()
        finally:
            if self._started_ray:
                ray.shutdown()
