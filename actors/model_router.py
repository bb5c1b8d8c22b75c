"""ModelRouter: how call actors reach the Serve deployments without importing `ray.serve` themselves.

Every call actor is its own worker process, so whatever it imports is paid once per call. `ray.serve`
is ~30 MB of private memory per process (FastAPI, Starlette, uvicorn and OpenTelemetry come with it),
a quarter of a call actor, and the call actor needed it only to hold two `DeploymentHandle`s. The
router holds those handles once and the call actors call it by plain actor call: one extra local hop
(about a millisecond) per utterance, reply or note, never per audio frame. Replica choice and the
ASR batching still happen in Serve, behind the router's handles.

`ray.model_routers` routers are started (each request is one await on a handle, so one router carries
hundreds of calls); a call actor picks one when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import ray
from ray import serve

from deployments import ASR_DEPLOYMENT, LLM_DEPLOYMENT
from iasovoice.engines.asr.base import Transcription

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class ModelRouter:
    def __init__(self, app_name: str) -> None:
        self._asr = serve.get_deployment_handle(ASR_DEPLOYMENT, app_name=app_name)
        self._llm = serve.get_deployment_handle(LLM_DEPLOYMENT, app_name=app_name)

    async def ready(self) -> bool:
        return True

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        """One 16 kHz float32 utterance; Serve batches it with other calls' utterances."""
        return await self._asr.transcribe.remote(audio)

    async def stream_reply(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """The reply's text deltas as the LLM writes them (a Ray streaming generator to the caller).

        When the call actor cancels (barge-in), Ray cancels this task, and the `finally` cancels the
        Serve stream so the replica stops generating for a reply nobody will hear.
        """
        stream = self._llm.options(stream=True).stream_reply.remote(messages)
        try:
            async for delta in stream:
                yield delta
        finally:
            stream.cancel()

    async def write_note(
        self,
        call_id: str,
        transcript: list[dict[str, Any]],
        flags: list[str],
        patient_context: dict[str, str] | None,
        dialogue_slots: dict[str, Any] | None = None,
    ) -> bytes:
        return await self._llm.write_note.remote(call_id, transcript, flags, patient_context, dialogue_slots)
