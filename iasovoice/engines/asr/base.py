"""The ASR seam: what every speech-to-text engine takes and returns.

The Serve deployment batches utterances from many calls into one `transcribe_batch` call, so the
contract is list-in / list-out in the same order. Engines never raise on empty or very short audio
(VAD can emit a blip); they return an empty transcription so one caller's glitch cannot fail a batch
that carries other callers' speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from iasovoice.errors import AudioFormatError

SAMPLE_RATE = 16000
"""Whisper models consume 16 kHz mono; telephone audio (8 kHz) is resampled upstream."""

MIN_SAMPLES = SAMPLE_RATE // 10
"""Below 100 ms Whisper only hallucinates, so shorter input returns empty text without decoding."""

# Whisper always encodes one 30 s window; longer audio is split by the engines.
WINDOW_SAMPLES = 30 * SAMPLE_RATE
# The config key that points an ASR engine at local weights (named in every missing-model error).
CONFIG_KEY = "asr.model_path"


@dataclass(frozen=True)
class Transcription:
    """One utterance's text plus the decoder's own confidence signals (None when not available)."""

    text: str
    duration_s: float
    language: str = "en"
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@runtime_checkable
class ASREngine(Protocol):
    """A speech-to-text engine. Implementations load their weights once, in `__init__`."""

    name: str
    sample_rate: int

    def transcribe_batch(self, utterances: list[np.ndarray]) -> list[Transcription]:
        """Transcribe float32 mono 16 kHz utterances in [-1, 1]; one result per input, in order."""
        ...


def as_float_mono(audio: np.ndarray) -> np.ndarray:
    """Return `audio` as a contiguous float32 1-D array in [-1, 1].

    int16 PCM (what telephony hands around) is scaled by 1/32768 as a convenience; any other shape
    than 1-D is a caller bug and raises `AudioFormatError` rather than being silently down-mixed.
    """
    array = np.asarray(audio)
    if array.ndim != 1:
        raise AudioFormatError(f"ASR expects 1-D mono audio, got an array of shape {array.shape}")
    if array.dtype == np.int16:
        return (array.astype(np.float32) / 32768.0).copy()
    out = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=-1.0)
    return out


def empty_transcription(num_samples: int, language: str) -> Transcription:
    """The result for audio too short to decode: empty text, true duration."""
    return Transcription(text="", duration_s=num_samples / SAMPLE_RATE, language=language)
