"""WhisperASR: speech-to-text batched across calls with `@serve.batch`.

Every call actor sends its finished utterances here one at a time; Serve gathers those that arrive
within `batch_wait_timeout_s` into one engine call. On a GPU that is where throughput comes from; on
2 CPU cores the gain is small (see docs/performance.md), but the batching is real either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray import serve

from deployments import ASR_DEPLOYMENT
from iasovoice.config import ASRConfig
from iasovoice.engines.asr.base import Transcription

log = logging.getLogger(__name__)


@serve.deployment(name=ASR_DEPLOYMENT)
class WhisperASR:
    def __init__(self, config: ASRConfig) -> None:
        from iasovoice.factory import build_asr_engine

        started = time.perf_counter()
        self._config = config
        self._engine = build_asr_engine(config)
        self.batch_sizes: list[int] = []
        self.reconfigure({"max_batch_size": config.max_batch_size, "batch_wait_timeout_s": config.batch_wait_timeout_s})
        log.info("WhisperASR ready (%s) in %.1f s", self._engine.name, time.perf_counter() - started)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Batch size and wait are tunable live from serve.yaml's `user_config`, no redeploy needed."""
        if "max_batch_size" in user_config:
            self.transcribe.set_max_batch_size(int(user_config["max_batch_size"]))
        if "batch_wait_timeout_s" in user_config:
            self.transcribe.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def transcribe(self, utterances: list[np.ndarray]) -> list[Transcription]:
        """One 16 kHz float32 utterance per caller in, one Transcription each out, in order."""
        self.batch_sizes.append(len(utterances))
        del self.batch_sizes[:-1000]
        # The engine is synchronous; a thread keeps the replica's event loop free to gather the next batch.
        return await asyncio.to_thread(self._engine.transcribe_batch, list(utterances))

    async def stats(self) -> dict[str, Any]:
        sizes = self.batch_sizes
        return {"batches": len(sizes), "mean_batch_size": float(np.mean(sizes)) if sizes else 0.0}
