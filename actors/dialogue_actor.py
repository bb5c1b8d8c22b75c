"""Dialogue IO actor: the call actors' way to Rasa, so no call actor holds an HTTP client of its own.

Rasa is a network service (loopback by default, a dialogue node on a cluster); talking to it from
here keeps its latency and its failures off the call actors' 20 ms loops, and one connection pool
serves every call. A failed turn comes back as a reason, never as an exception: the call goes on with
the safety rules and the LLM, and the degradation is logged and counted.
"""

from __future__ import annotations

import logging
import os

import ray

from actors import names
from iasovoice.config import DialogueConfig
from iasovoice.dialogue.rasa_client import RasaClient, RasaUnavailable
from iasovoice.dialogue.turn import DialogueTurn

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_concurrency=64)
class DialogueActor:
    def __init__(self, config: DialogueConfig) -> None:
        token = os.environ.get(config.rasa.auth_token_env) if config.rasa.auth_token_env else None
        self._client = RasaClient(config.rasa, token)
        self._metrics = ray.get_actor(names.METRICS)

    async def healthy(self) -> bool:
        return await self._client.healthy()

    async def interpret(self, call_id: str, text: str, trigger: str | None = None) -> DialogueTurn | str:
        """Rasa's turn for one utterance (or an external intent), or why there is none."""
        try:
            if trigger is not None:
                return await self._client.trigger(call_id, trigger)
            return await self._client.message(call_id, text)
        except RasaUnavailable as error:
            self._metrics.record.remote("DialogueDegraded", 1, "Count")
            return str(error)
