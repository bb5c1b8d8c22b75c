"""Speech-to-text engines.

`FasterWhisperEngine` (CTranslate2, CPU default) is imported eagerly; `OpenAIWhisperEngine` (PyTorch,
GPU production path) is re-exported lazily so that importing this package never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iasovoice.engines.asr.base import ASREngine, Transcription

if TYPE_CHECKING:
    from iasovoice.engines.asr.faster_whisper_engine import FasterWhisperEngine
    from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

__all__ = ["ASREngine", "FasterWhisperEngine", "OpenAIWhisperEngine", "Transcription"]


def __getattr__(name: str) -> Any:
    # Lazy so that `from iasovoice.engines.asr import Transcription` does not load ctranslate2.
    if name == "FasterWhisperEngine":
        from iasovoice.engines.asr.faster_whisper_engine import FasterWhisperEngine

        return FasterWhisperEngine
    if name == "OpenAIWhisperEngine":
        from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

        return OpenAIWhisperEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
