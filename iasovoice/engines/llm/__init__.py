"""LLM engines behind one streaming protocol: llama.cpp on CPU (default), vLLM on GPU (production).

Backends are imported lazily so importing this package never loads llama.cpp or vLLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iasovoice.engines.llm.base import ChatMessage, LLMEngine
from iasovoice.engines.llm.packaged_weights import (
    DEFAULT_PACKAGED_MODEL,
    PACKAGED_MODELS,
    PackagedModelSpec,
    PackagedWeightsError,
    assemble_packaged_model,
    default_cache_dir,
)

if TYPE_CHECKING:
    from iasovoice.engines.llm.llama_cpp_engine import LlamaCppEngine
    from iasovoice.engines.llm.vllm_engine import VLLMEngine

__all__ = [
    "DEFAULT_PACKAGED_MODEL",
    "PACKAGED_MODELS",
    "ChatMessage",
    "LLMEngine",
    "LlamaCppEngine",
    "PackagedModelSpec",
    "PackagedWeightsError",
    "VLLMEngine",
    "assemble_packaged_model",
    "default_cache_dir",
]


def __getattr__(name: str) -> Any:
    if name == "LlamaCppEngine":
        from iasovoice.engines.llm.llama_cpp_engine import LlamaCppEngine

        return LlamaCppEngine
    if name == "VLLMEngine":
        from iasovoice.engines.llm.vllm_engine import VLLMEngine

        return VLLMEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
