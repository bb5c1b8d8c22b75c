"""Amazon Polly: the production TTS engine.

Polly returns raw PCM (16-bit little-endian mono) at 8000 or 16000 Hz, which is already the
telephone format, so no decoding or resampling happens here. The boto3 client is injected (built by
the caller with its region and credentials) so the engine is testable with botocore's Stubber and
never creates AWS sessions of its own.

Polly bills and limits plain-text requests at 3000 characters, so longer text is split at sentence
boundaries (then at spaces, then hard) and the audio of the parts is concatenated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from iasovoice.engines.tts.base import SynthesizedAudio, TTSError, check_voice

_LOG = logging.getLogger(__name__)

DEFAULT_VOICE_IDS: dict[str, str] = {
    "default": "Joanna",
    "male": "Matthew",
    "clinical": "Salli",
    "empathetic": "Kendra",
}
SAMPLE_RATES = (8000, 16000)
"""The only rates Polly's PCM output offers."""
MAX_CHARS = 3000
"""Polly's limit on billed characters per SynthesizeSpeech request (plain text: every character)."""

RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ServiceFailureException", "ServiceUnavailableException", "RequestTimeout"}
)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


class PollyEngine:
    """`TTSEngine` backed by a boto3 Polly client (`boto3.client("polly", region_name=...)`)."""

    name = "polly"

    def __init__(
        self,
        client: Any,
        voice_ids: dict[str, str] | None = None,
        sample_rate: int = 8000,
        engine: str = "neural",
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"Polly PCM sample_rate must be 8000 or 16000, not {sample_rate!r}")
        mapping = dict(DEFAULT_VOICE_IDS if voice_ids is None else voice_ids)
        if not mapping:
            raise ValueError("Polly `voice_ids` must map at least one logical voice to a VoiceId")
        self._client = client
        self._voice_ids: Mapping[str, str] = mapping
        self.voices: tuple[str, ...] = tuple(mapping)
        self.sample_rate = sample_rate
        self.engine = engine

    def synthesize(self, text: str, voice: str = "default") -> SynthesizedAudio:
        """Speak `text` with the Polly voice mapped to logical `voice`; errors become TTSError."""
        check_voice(voice, self.voices)
        parts = [self._request(chunk, self._voice_ids[voice]) for chunk in split_text(text, MAX_CHARS)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return SynthesizedAudio(samples=samples, sample_rate=self.sample_rate)

    def _request(self, text: str, voice_id: str) -> np.ndarray:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.synthesize_speech(
                Text=text,
                VoiceId=voice_id,
                OutputFormat="pcm",
                SampleRate=str(self.sample_rate),
                Engine=self.engine,
            )
            stream = response["AudioStream"]
            try:
                data = stream.read()
            finally:
                stream.close()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            raise TTSError(
                f"Polly SynthesizeSpeech failed ({code}) for voice {voice_id} / engine {self.engine}: "
                f"{error.get('Message', exc)}",
                code=code,
                retryable=code in RETRYABLE_CODES,
            ) from exc
        except BotoCoreError as exc:  # connection, timeout, streaming errors: transient
            raise TTSError(f"Polly request failed: {exc}", code=type(exc).__name__, retryable=True) from exc
        if len(data) % 2:
            _LOG.warning("Polly returned an odd number of PCM bytes (%d); dropping the last byte", len(data))
            data = data[:-1]
        _LOG.debug("Polly spoke %r as %s: %d bytes", text, voice_id, len(data))  # text is PHI: debug only
        return np.frombuffer(data, dtype="<i2").astype(np.int16)


def split_text(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Split `text` into stripped pieces of at most `limit` characters, preferring sentence ends.

    Sentences are packed greedily; a sentence longer than `limit` is split at spaces, and a single
    "word" longer than `limit` (never in speech, but possible in garbage input) is cut hard.
    """
    text = " ".join(text.split())
    if not text:
        return []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        pieces.extend(_split_long(sentence, limit) if len(sentence) > limit else [sentence])
    return _pack(pieces, limit)


def _split_long(sentence: str, limit: int) -> list[str]:
    """A sentence over `limit`, packed by words; a word over `limit` is cut hard first."""
    words: list[str] = []
    for word in sentence.split(" "):
        while len(word) > limit:
            words.append(word[:limit])
            word = word[limit:]
        words.append(word)
    return _pack(words, limit)


def _pack(pieces: list[str], limit: int) -> list[str]:
    """Join consecutive pieces with spaces, greedily, into chunks of at most `limit` characters."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks
