"""Text-to-speech engines: Piper (local default), Amazon Polly (production).

Engines are imported lazily so that `from iasovoice.engines.tts import SynthesizedAudio` loads neither
onnxruntime nor boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iasovoice.engines.tts.base import LOGICAL_VOICES, SynthesizedAudio, TTSEngine, TTSError

if TYPE_CHECKING:
    from iasovoice.engines.tts.piper_engine import PiperEngine
    from iasovoice.engines.tts.polly_engine import PollyEngine

__all__ = ["LOGICAL_VOICES", "PiperEngine", "PollyEngine", "SynthesizedAudio", "TTSEngine", "TTSError"]


def __getattr__(name: str) -> Any:
    if name == "PiperEngine":
        from iasovoice.engines.tts.piper_engine import PiperEngine

        return PiperEngine
    if name == "PollyEngine":
        from iasovoice.engines.tts.polly_engine import PollyEngine

        return PollyEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
