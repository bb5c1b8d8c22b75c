"""TTS IO actor: text → 16-bit PCM at the caller's rate, off the call actors' event loops.

Polly is a network round trip and Piper is CPU work; either way a call actor only awaits a reference
and keeps serving its 20 ms frames. Phrases that recur on every call (the greeting, fallbacks) are
cached so the agent's first words go out without waiting for synthesis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import numpy as np
import ray

from iasovoice.audio.resample import resample
from iasovoice.config import TTSConfig

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_concurrency=8)
class TTSActor:
    def __init__(self, config: TTSConfig) -> None:
        from iasovoice.factory import build_tts_engine

        self._engine = build_tts_engine(config)
        self._cache: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._cache_size = config.cache_phrases
        # Piper's ONNX session is shared; one synthesis at a time keeps 2 cores from thrashing. Polly
        # calls are network-bound and run concurrently.
        self._lock = asyncio.Lock() if config.engine == "piper" else None

    def engine_name(self) -> str:
        return self._engine.name

    async def synthesize(self, text: str, voice: str, sample_rate: int) -> np.ndarray:
        key = (voice, text, sample_rate)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        started = time.perf_counter()
        if self._lock is not None:
            async with self._lock:
                audio = await asyncio.to_thread(self._engine.synthesize, text, voice)
        else:
            audio = await asyncio.to_thread(self._engine.synthesize, text, voice)
        samples = resample(audio.samples, audio.sample_rate, sample_rate)
        log.debug("synthesized %d chars in %.3f s", len(text), time.perf_counter() - started)
        if self._cache_size:
            self._cache[key] = samples
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return samples
