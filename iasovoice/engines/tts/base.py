"""The TTS seam: text in, int16 mono PCM out, under a logical voice name.

Callers speak in logical voices (`default`, `male`, `clinical`, `empathetic`); each engine maps them
to what it has (a Polly VoiceId, Piper synthesis settings), so the call flow never names a vendor's
voice. Resampling to the telephone rate is the caller's job: engines report their own rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from iasovoice.errors import IasoVoiceError

LOGICAL_VOICES: tuple[str, ...] = ("default", "male", "clinical", "empathetic")


class TTSError(IasoVoiceError):
    """Speech could not be synthesised. `retryable` is True for throttling and transient faults."""

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class SynthesizedAudio:
    """Synthesised speech: int16 mono samples at `sample_rate` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0

    def pcm_bytes(self) -> bytes:
        """16-bit little-endian PCM, the wire format telephony expects."""
        return self.samples.astype("<i2", copy=False).tobytes()


@runtime_checkable
class TTSEngine(Protocol):
    """A text-to-speech engine. Implementations load or connect once, in `__init__`."""

    name: str
    voices: tuple[str, ...]

    def synthesize(self, text: str, voice: str = "default") -> SynthesizedAudio:
        """Speak `text` in the logical `voice`; an unknown voice raises ValueError."""
        ...


def check_voice(voice: str, configured: Iterable[str]) -> None:
    """Raise ValueError naming `voice` and the configured ones when it is not configured."""
    names = tuple(configured)
    if voice not in names:
        raise ValueError(f"Unknown TTS voice {voice!r}; configured voices: {', '.join(names)}")
