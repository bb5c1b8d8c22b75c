"""LLM: the agent's replies (streamed, so TTS starts on the first sentence) and the SOAP note.

The engine is llama.cpp with a small packaged model on CPU, or Phi-4 on vLLM on GPU; which one is a
config key. Emergency handling never comes from here: red flags are rules in the dialogue policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from deployments import LLM_DEPLOYMENT
from iasovoice.config import LLMConfig
from iasovoice.notes.schema import TranscriptTurn

log = logging.getLogger(__name__)


@serve.deployment(name=LLM_DEPLOYMENT)
class LLMDeployment:
    def __init__(self, config: LLMConfig) -> None:
        from iasovoice.factory import build_llm_engine, llm_provenance, note_prompts

        started = time.perf_counter()
        self._config = config
        self._engine = build_llm_engine(config)
        self._provenance = llm_provenance(config)
        self._note_prompts = note_prompts(config)
        log.info("LLM ready (%s) in %.1f s", self._provenance.name, time.perf_counter() - started)

    async def stream_reply(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        async for delta in self._engine.stream_chat(
            messages, max_tokens=self._config.reply_max_tokens, temperature=self._config.temperature
        ):
            yield delta

    async def write_note(
        self,
        call_id: str,
        transcript: list[dict[str, object]],
        flags: list[str],
        patient_context: dict[str, str] | None = None,
        dialogue_slots: dict[str, Any] | None = None,
    ) -> bytes:
        """The SOAP note as validated JSON bytes, with the transcript it came from."""
        from iasovoice.notes.soap import generate_note

        turns = [TranscriptTurn.model_validate(t) for t in transcript]
        note = await generate_note(
            self._engine,
            call_id,
            turns,
            model=self._provenance,
            prompts=self._note_prompts,
            max_tokens=self._config.note_max_tokens,
            temperature=0.1,
            patient_context=patient_context,
            dialogue_slots=dialogue_slots,
        )
        if flags:
            note = note.model_copy(update={"flags": sorted(set(note.flags) | set(flags))})
        return note.to_json()
