"""Build engines and stores from config: the one place where a config value picks an implementation.

Imports are local to each branch so the CPU path never imports a GPU-only package (vllm, whisper,
torch) and a deployment only loads what it serves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iasovoice.config import (
    ASRConfig,
    LLMConfig,
    MetricsConfig,
    StorageConfig,
    TTSConfig,
    VADConfig,
    resolve_path,
)
from iasovoice.engines.llm.provenance import (
    STANDIN_NAME,
    ModelProvenance,
    packaged_provenance,
    weights_provenance,
)

if TYPE_CHECKING:
    from iasovoice.engines.asr.base import ASREngine
    from iasovoice.engines.llm.base import LLMEngine
    from iasovoice.engines.tts.base import TTSEngine
    from iasovoice.notes.soap import NotePrompts
    from iasovoice.storage.base import CallStore
    from iasovoice.vad.base import VoiceActivityDetector


def build_vad(config: VADConfig, sample_rate: int) -> VoiceActivityDetector:
    if config.engine == "energy":
        from iasovoice.vad.energy import EnergyVAD

        return EnergyVAD(sample_rate)
    from iasovoice.vad.silero import SileroVAD

    return SileroVAD(sample_rate, model_path=config.model_path)


def build_asr_engine(config: ASRConfig) -> ASREngine:
    if config.engine == "standin":
        from iasovoice.engines.standin import StandInASR

        return StandInASR()
    if config.engine == "openai-whisper":
        from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

        assert config.model_path is not None  # enforced by ASRConfig
        return OpenAIWhisperEngine(str(resolve_path(config.model_path)), device=config.device, language=config.language)
    from iasovoice.engines.asr.faster_whisper_engine import FasterWhisperEngine

    return FasterWhisperEngine(
        model_path=str(resolve_path(config.model_path)) if config.model_path else None,
        device=config.device,
        compute_type=config.compute_type,
        cpu_threads=config.cpu_threads,
        beam_size=config.beam_size,
        language=config.language,
    )


def llm_provenance(config: LLMConfig) -> ModelProvenance:
    """The model named in notes, by its real name and weights' sha256, so a clinician can tell which
    model wrote which note."""
    if config.engine == "standin":
        return ModelProvenance(STANDIN_NAME, None)
    if config.engine == "vllm":
        return weights_provenance(Path(config.vllm.model).expanduser(), model_cache_dir(config))
    if config.model_path:
        return weights_provenance(resolve_path(config.model_path), model_cache_dir(config))
    return packaged_provenance(config.packaged_model)


def note_prompts(config: LLMConfig) -> NotePrompts:
    from iasovoice.notes.soap import NotePrompts

    return NotePrompts(config.note_system_prompt, config.note_repair_prompt, config.note_chunk_prompt)


def model_cache_dir(config: LLMConfig) -> Path:
    return Path(os.environ.get("IASOVOICE_MODEL_CACHE") or os.path.expanduser(config.model_cache_dir))


def resolve_llama_model_path(config: LLMConfig) -> Path:
    """The GGUF file to load: the configured path, else the packaged weights joined once into the cache."""
    if config.model_path:
        return resolve_path(config.model_path)
    from iasovoice.engines.llm.packaged_weights import assemble_packaged_model

    return assemble_packaged_model(model_cache_dir(config), name=config.packaged_model)


def build_llm_engine(config: LLMConfig) -> LLMEngine:
    if config.engine == "standin":
        from iasovoice.engines.standin import StandInLLM

        return StandInLLM(first_token_s=config.standin_first_token_s)
    if config.engine == "vllm":
        from iasovoice.engines.llm.vllm_engine import VLLMEngine

        v = config.vllm
        # Only what is set: vLLM's own default for quantization is "what the checkpoint says".
        extra: dict[str, Any] = {"quantization": v.quantization} if v.quantization else {}
        return VLLMEngine(
            v.model,
            tensor_parallel_size=v.tensor_parallel_size,
            max_model_len=v.max_model_len,
            gpu_memory_utilization=v.gpu_memory_utilization,
            dtype=v.dtype,
            max_num_seqs=v.max_num_seqs,
            **extra,
        )
    from iasovoice.engines.llm.llama_cpp_engine import LlamaCppEngine

    return LlamaCppEngine(resolve_llama_model_path(config), n_ctx=config.context_tokens, n_threads=config.n_threads)


def build_tts_engine(config: TTSConfig) -> TTSEngine:
    if config.engine == "standin":
        from iasovoice.engines.standin import StandInTTS

        return StandInTTS()
    if config.engine == "polly":
        import boto3

        from iasovoice.engines.tts.polly_engine import PollyEngine

        p = config.polly
        client = boto3.client("polly", region_name=p.region)
        return PollyEngine(client, voice_ids=dict(p.voices), sample_rate=p.sample_rate, engine=p.engine)
    from iasovoice.engines.tts.piper_engine import PiperEngine

    piper = config.piper
    return PiperEngine(
        model_path=str(resolve_path(piper.model_path)) if piper.model_path else None,
        voices={k: dict(v) for k, v in piper.voices.items()},
    )


def build_store(config: StorageConfig) -> CallStore:
    if config.backend == "s3":
        import boto3

        from iasovoice.storage.s3_store import S3Store

        s3 = config.s3
        return S3Store(boto3.client("s3", region_name=s3.region), s3.bucket, s3.prefix, s3.kms_key_id)
    from iasovoice.storage.local_store import LocalEncryptedStore, load_or_create_key

    local = config.local
    key = load_or_create_key(resolve_path(local.key_file), env_var=local.key_env)
    return LocalEncryptedStore(resolve_path(local.root), key)


def metrics_path(config: MetricsConfig) -> Path:
    return resolve_path(config.local_path)
