"""Config -> Ray options: the one place that turns `placement:`, `asr:` and `llm:` into what Ray takes.

Where an actor or a model replica runs on a cluster is decided by what it requests: a custom resource
that only one node type declares in ray_cluster.yaml (`iasovoice_calls` on call workers, a GPU node
type's own resource for each model) sends it there, and a request no running node can meet is what
makes the autoscaler start a node of a type that can. So the same numbers must reach the actors
(`.options(...)`), the Serve deployments (`ray_actor_options`), a local Ray (which must offer every
custom resource asked for, or nothing would start) and the test that checks ray_cluster.yaml against
the production config. They all come from here. Nothing here imports Ray: it is tested without it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args

from iasovoice.config import AppConfig, ASRConfig, LLMConfig

ActorKind = Literal[
    "call_actor", "directory", "model_router", "tts", "storage", "metrics", "dialogue", "escalation", "models_ingress"
]
ACTOR_KINDS: tuple[str, ...] = get_args(ActorKind)

# A local Ray is one node, so it offers each custom resource the config requests in this amount: enough
# that placement never limits anything there (the node's CPUs and memory do).
LOCAL_CUSTOM_RESOURCE_UNITS = 10_000

# What llama.cpp really runs at once: one generation under its lock, plus one waiting so the lock never
# idles between requests. More in flight would only queue inside the replica, where Serve cannot see
# them or send them to another replica.
LLAMA_CPP_IN_FLIGHT = 2
SERVE_DEFAULT_IN_FLIGHT = 5


class ResourceRequest(Protocol):
    """What an actor kind (`placement.<kind>`) or a model replica (`asr:`, `llm:`) asks Ray for."""

    num_cpus: float
    num_gpus: float
    resources: dict[str, float]


def _ray_options(request: ResourceRequest) -> dict[str, Any]:
    """The resource part of `.options()` / `ray_actor_options`; `resources` only when some are asked for."""
    options: dict[str, Any] = {"num_cpus": request.num_cpus, "num_gpus": request.num_gpus}
    if request.resources:
        options["resources"] = dict(request.resources)
    return options


def actor_options(config: AppConfig, kind: ActorKind) -> dict[str, Any]:
    """`.options(...)` resource arguments for one actor of `kind`, from `placement.<kind>`."""
    return _ray_options(getattr(config.placement, kind))


def asr_max_ongoing_requests(asr: ASRConfig) -> int:
    """Utterances in flight per ASR replica: room for a full batch to gather while one runs."""
    if asr.max_ongoing_requests is not None:
        return asr.max_ongoing_requests
    return max(16, asr.max_batch_size * 2)


def llm_max_ongoing_requests(llm: LLMConfig) -> int:
    """Requests in flight per LLM replica: the engine's real concurrency unless the config says otherwise.

    Serve's default (5) starves vLLM, whose continuous batching needs `max_num_seqs` sequences to fill
    the GPU; for llama.cpp anything above what it runs only hides the queue from Serve's router.
    """
    if llm.max_ongoing_requests is not None:
        return llm.max_ongoing_requests
    if llm.engine == "vllm":
        return llm.vllm.max_num_seqs
    if llm.engine == "llama-cpp":
        return LLAMA_CPP_IN_FLIGHT
    return SERVE_DEFAULT_IN_FLIGHT


def asr_deployment_options(asr: ASRConfig) -> dict[str, Any]:
    """`WhisperASR.options(...)`: replicas, their resources, requests in flight and the batching knobs."""
    return {
        "num_replicas": asr.num_replicas,
        "ray_actor_options": _ray_options(asr),
        "max_ongoing_requests": asr_max_ongoing_requests(asr),
        "user_config": {"max_batch_size": asr.max_batch_size, "batch_wait_timeout_s": asr.batch_wait_timeout_s},
    }


def llm_deployment_options(llm: LLMConfig) -> dict[str, Any]:
    """`LLMDeployment.options(...)`: replicas, their resources and requests in flight."""
    return {
        "num_replicas": llm.num_replicas,
        "ray_actor_options": _ray_options(llm),
        "max_ongoing_requests": llm_max_ongoing_requests(llm),
    }


def ingress_deployment_options(config: AppConfig) -> dict[str, Any]:
    """`VoiceModels.options(...)`: the ingress replica's resources (`placement.models_ingress`)."""
    return {"ray_actor_options": actor_options(config, "models_ingress")}


def _demand(request: ResourceRequest) -> dict[str, float]:
    demand = {"CPU": request.num_cpus, "GPU": request.num_gpus, **request.resources}
    return {name: quantity for name, quantity in demand.items() if quantity > 0}


def resource_demands(config: AppConfig) -> dict[str, dict[str, float]]:
    """Each actor kind's and model replica's whole request, as Ray resource names (`CPU`, `GPU`, custom).

    Only the kinds this config creates (no dialogue actors under `dialogue.engine: rules`, no escalation
    actor without `set_contact_attributes`). A node type can host a kind when it offers at least all of
    it; the autoscaler reasons the same way.
    """
    kinds = [kind for kind in ACTOR_KINDS if _created(config, kind)]
    demands = {kind: _demand(getattr(config.placement, kind)) for kind in kinds}
    demands["asr"] = _demand(config.asr)
    demands["llm"] = _demand(config.llm)
    return demands


def instance_counts(config: AppConfig) -> dict[str, int]:
    """How many actors or replicas of each kind in `resource_demands` this config starts.

    For call actors it is the warm pool; every live call adds one more, and that growth is what the
    call workers' autoscaling is for.
    """
    counts = {
        "call_actor": config.call.pool_size,
        "directory": 1,
        "model_router": config.ray.model_routers,
        "tts": config.tts.num_actors,
        "storage": 1,
        "metrics": 1,
        "dialogue": config.dialogue.num_actors,
        "escalation": 1,
        "models_ingress": 1,
        "asr": config.asr.num_replicas,
        "llm": config.llm.num_replicas,
    }
    return {kind: count for kind, count in counts.items() if kind in resource_demands(config)}


def custom_resources(config: AppConfig) -> set[str]:
    """Names of the custom resources anything in this config requests."""
    return {name for demand in resource_demands(config).values() for name in demand if name not in ("CPU", "GPU")}


def cpus_requested(config: AppConfig) -> float:
    """Logical CPUs everything the config starts asks for; with `call.max_active_calls`, its live calls too.

    A local Ray must declare at least this many or some actor would wait forever for its CPU share.
    """
    demands = resource_demands(config)
    counts = instance_counts(config)
    counts["call_actor"] += config.call.max_active_calls or 0
    return sum(demand.get("CPU", 0.0) * counts[kind] for kind, demand in demands.items())


def local_resources(config: AppConfig) -> dict[str, float]:
    """What a local Ray (`ray.address: null`) declares so every request of the config can be met there."""
    return {name: float(LOCAL_CUSTOM_RESOURCE_UNITS) for name in sorted(custom_resources(config))}


def _created(config: AppConfig, kind: str) -> bool:
    if kind == "dialogue":
        return config.dialogue.engine == "rasa"
    if kind == "escalation":
        return config.dialogue.safety.set_contact_attributes
    return True
