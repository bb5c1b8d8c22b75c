"""Whisper on PyTorch (the `openai-whisper` package): the production GPU ASR engine.

`openai-whisper` and torch belong to the optional `gpu` extra, so they are imported inside
`__init__` only; the CPU path never pays for (or needs) torch. The checkpoint is always a local
`.pt` file (large-v3 or medium.en from the operator's model store): `whisper.load_model` would
download when handed a bare model *name*, so this engine resolves the path to an absolute, existing
file first and refuses anything else.

Across-call batching is real here: every utterance of <= 30 s is padded/trimmed to Whisper's 30 s
window, turned into a log-mel spectrogram, stacked into one [N, n_mels, 3000] tensor and decoded with
one `whisper.decode` call (one encoder pass and one batched greedy decoder loop for the whole batch).
Longer utterances (rare: VAD cuts turns) go through `whisper.transcribe`, which seeks through them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

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

NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
"""openai-whisper's own `transcribe` defaults for treating a window as silence."""

INSTALL_HINT = (
    "The openai-whisper engine needs the optional GPU dependencies (openai-whisper and torch): "
    "install them with `pip install -e '.[gpu]'`, or use the faster-whisper engine on CPU."
)


class OpenAIWhisperEngine:
    """`ASREngine` backed by openai-whisper. Serialises model use with a lock (it is not thread-safe)."""

    name = "openai-whisper"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        checkpoint_path: str,
        device: str = "cuda",
        language: str = "en",
        fp16: bool | None = None,
    ) -> None:
        try:
            import torch
            import whisper
        except ImportError as exc:
            raise ImportError(f"{INSTALL_HINT} ({exc})") from exc

        path = Path(checkpoint_path).expanduser().resolve()
        if not path.is_file():
            raise ModelNotFoundError(
                CONFIG_KEY,
                f"No openai-whisper checkpoint (.pt file) at {checkpoint_path!r}; weights are never "
                "downloaded at run time.",
            )
        self._torch: Any = torch
        self._whisper: Any = whisper
        self.checkpoint_path = path
        self.device = device
        self.language = language
        self.fp16 = device.startswith("cuda") if fp16 is None else fp16
        self._lock = threading.Lock()
        started = time.perf_counter()
        # An absolute path is never one of whisper's model names, so load_model cannot download.
        self._model = whisper.load_model(os.fspath(path), device=device)
        self._model.eval()
        self.load_seconds = time.perf_counter() - started
        _LOG.info(
            "Loaded openai-whisper checkpoint %s on %s (fp16=%s) in %.2f s",
            path,
            device,
            self.fp16,
            self.load_seconds,
        )

    def transcribe_batch(self, utterances: list[np.ndarray]) -> list[Transcription]:
        """Transcribe each utterance (float32 mono 16 kHz); one result per input, in input order."""
        audios = [as_float_mono(u) for u in utterances]
        results: list[Transcription | None] = [None] * len(audios)
        short: list[int] = []
        long: list[int] = []
        for i, audio in enumerate(audios):
            if audio.size < MIN_SAMPLES:
                results[i] = empty_transcription(audio.size, self.language)
            elif audio.size <= WINDOW_SAMPLES:
                short.append(i)
            else:
                long.append(i)
        with self._lock:
            if short:
                for i, result in zip(short, self._decode_stacked([audios[i] for i in short]), strict=True):
                    results[i] = result
            for i in long:
                results[i] = self._transcribe_long(audios[i])
        for result in results:
            _LOG.debug("ASR result: %r", result)  # transcript text is PHI: debug level only
        return [r for r in results if r is not None]

    def _decode_stacked(self, audios: list[np.ndarray]) -> list[Transcription]:
        """One batched `whisper.decode` over the 30 s log-mel windows of all utterances."""
        torch, whisper = self._torch, self._whisper
        n_mels = self._model.dims.n_mels
        with torch.inference_mode():
            mels = [
                whisper.log_mel_spectrogram(
                    whisper.pad_or_trim(torch.from_numpy(audio)), n_mels=n_mels, device=self._model.device
                )
                for audio in audios
            ]
            options = whisper.DecodingOptions(
                language=self.language, without_timestamps=True, fp16=self.fp16, temperature=0.0
            )
            decoded = whisper.decode(self._model, torch.stack(mels), options)
        out = []
        for audio, result in zip(audios, decoded, strict=True):
            silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOG_PROB_THRESHOLD
            out.append(
                Transcription(
                    text="" if silent else result.text.strip(),
                    duration_s=audio.size / SAMPLE_RATE,
                    language=result.language or self.language,
                    avg_logprob=float(result.avg_logprob),
                    no_speech_prob=float(result.no_speech_prob),
                )
            )
        return out

    def _transcribe_long(self, audio: np.ndarray) -> Transcription:
        """Utterances over 30 s: whisper's own seeking loop, greedy, without cross-window context."""
        result = self._whisper.transcribe(
            self._model,
            audio,
            language=self.language,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            fp16=self.fp16,
            verbose=None,
        )
        segments = result.get("segments", [])
        return Transcription(
            text=str(result.get("text", "")).strip(),
            duration_s=audio.size / SAMPLE_RATE,
            language=result.get("language") or self.language,
            avg_logprob=_mean([s["avg_logprob"] for s in segments]),
            no_speech_prob=_mean([s["no_speech_prob"] for s in segments]),
        )


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
