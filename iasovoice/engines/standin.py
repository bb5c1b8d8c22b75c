"""Stand-in engines: for benchmarks and smoke tests only. Constant-time, no model, no weights.

They meet the same seams as the real engines (ASR, LLM, TTS) so the whole call path runs unchanged, but
each answers after a fixed, configured-in-code delay with fixed content. That is what lets a benchmark
measure the platform (gateway, call actors, Ray, Serve) without the models' cost or variance in the
figures. Selected with `asr.engine: standin`, `llm.engine: standin`, `tts.engine: standin`; nothing
here may ever answer a patient.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from iasovoice.engines.asr.base import SAMPLE_RATE, Transcription, as_float_mono
from iasovoice.engines.llm.base import ChatMessage
from iasovoice.engines.tts.base import LOGICAL_VOICES, SynthesizedAudio, check_voice

STANDIN_TEXT = "stand-in transcript"
STANDIN_REPLY = "This is a stand-in reply."
STANDIN_NOTE = (
    "Subjective: stand-in note.\nObjective: stand-in note.\nAssessment: stand-in note.\nPlan: stand-in note."
)


class StandInASR:
    """Returns `STANDIN_TEXT` for every utterance after `delay_s` per batch (not per utterance)."""

    name = "standin-asr"
    sample_rate = SAMPLE_RATE

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s

    def transcribe_batch(self, utterances: list[np.ndarray]) -> list[Transcription]:
        time.sleep(self.delay_s)  # the engine seam is synchronous; the deployment runs it in a thread
        return [
            Transcription(text=STANDIN_TEXT, duration_s=len(as_float_mono(u)) / SAMPLE_RATE) for u in utterances
        ]


class StandInLLM:
    """Streams `STANDIN_REPLY` word by word after `first_token_s`; notes are a fixed four-section text."""

    name = "standin-llm"

    def __init__(self, first_token_s: float = 0.05) -> None:
        self.first_token_s = first_token_s

    async def stream_chat(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float, stop: list[str] | None = None
    ) -> AsyncIterator[str]:
        await asyncio.sleep(self.first_token_s)
        for index, word in enumerate(STANDIN_REPLY.split(" ")):
            yield word if index == 0 else " " + word

    async def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float, stop: list[str] | None = None
    ) -> str:
        await asyncio.sleep(self.first_token_s)
        return STANDIN_NOTE


class StandInTTS:
    """A 440 Hz tone, 60 ms per character (capped at 4 s), at 16 kHz, after no synthesis work at all."""

    name = "standin-tts"
    voices = LOGICAL_VOICES
    sample_rate = 16000

    def synthesize(self, text: str, voice: str = "default") -> SynthesizedAudio:
        check_voice(voice, self.voices)
        seconds = min(4.0, 0.06 * max(1, len(text)))
        t = np.arange(int(seconds * self.sample_rate)) / self.sample_rate
        return SynthesizedAudio((0.2 * 32767 * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16), self.sample_rate)
