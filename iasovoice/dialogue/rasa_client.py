"""An async client of Rasa's HTTP API for live calls: bounded waits, and no dead call when Rasa is down.

Each call's id is its Rasa sender id, so Rasa keeps one conversation (tracker, active form) per call.
A turn is one REST-channel message (what Rasa says) plus one tracker read (intent, entities, slots).
When Rasa fails or is slow the client says so at once (`RasaUnavailable`) and, for
`retry_after_s`, answers without trying, so a caller never waits out a timeout on every turn while
Rasa is down; after that the next turn tries again, which is how the client reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from iasovoice.config import RasaConfig
from iasovoice.dialogue.turn import DialogueTurn, turn_from_rasa
from iasovoice.errors import IasoVoiceError

log = logging.getLogger(__name__)


class RasaUnavailable(IasoVoiceError):
    """Rasa did not answer a turn (down, slow or erroring); the call goes on without it."""


class RasaClient:
    def __init__(self, config: RasaConfig, token: str | None = None) -> None:
        self._config = config
        self._base = config.url.rstrip("/")
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._down_until = 0.0
        self.failures = 0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    async def message(self, sender: str, text: str) -> DialogueTurn:
        """One caller utterance through Rasa's policy: what to say, and the state it leaves."""
        return await self._turn(sender, "/webhooks/rest/webhook", {"sender": sender, "message": text})

    async def trigger(self, sender: str, intent: str) -> DialogueTurn:
        """An external intent (an outbound call's type) that opens the conversation with Rasa's script."""
        path = f"/conversations/{quote(sender, safe='')}/trigger_intent?output_channel=collector"
        return await self._turn(sender, path, {"name": intent, "entities": {}})

    async def parse(self, text: str) -> dict[str, Any]:
        """NLU only (no conversation): intent ranking and entities, for `iasovoice eval nlu`."""
        return await self._request("POST", "/model/parse", {"text": text})

    async def healthy(self) -> bool:
        try:
            status = await self._request("GET", "/status", None, count_failure=False)
        except RasaUnavailable:
            return False
        return bool(status.get("model_file"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _turn(self, sender: str, path: str, body: dict[str, Any]) -> DialogueTurn:
        if not self.available:
            raise RasaUnavailable("Rasa is marked down after a recent failure")
        try:
            async with asyncio.timeout(self._config.timeout_s):
                messages = await self._request("POST", path, body)
                if isinstance(messages, dict):  # trigger_intent: {"tracker": ..., "messages": [...]}
                    messages = messages.get("messages") or []
                tracker = await self._request("GET", f"/conversations/{quote(sender, safe='')}/tracker", None)
        except TimeoutError as error:
            self._mark_down("timeout")
            raise RasaUnavailable(f"Rasa took longer than {self._config.timeout_s} s") from error
        return turn_from_rasa(list(messages), tracker, self._config.escalate_confidence)

    async def _request(self, method: str, path: str, body: Any, count_failure: bool = True) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._config.timeout_s))
        params = {"token": self._token} if self._token else None
        try:
            async with self._session.request(method, self._base + path, json=body, params=params) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status} on {path.split('?')[0]}")
                result = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            if count_failure:
                self._mark_down(type(error).__name__)
            raise RasaUnavailable(f"Rasa request failed: {type(error).__name__}") from error
        except RasaUnavailable as error:
            if count_failure:
                self._mark_down(str(error))
            raise
        if self.failures and count_failure:
            log.warning("Rasa is answering again after %d failed turn(s)", self.failures)
            self.failures = 0
        return result

    def _mark_down(self, reason: str) -> None:
        self.failures += 1
        self._down_until = time.monotonic() + self._config.retry_after_s
        log.warning("Rasa unavailable (%s); turns go on with the safety rules and the LLM for %.0f s",
                    reason, self._config.retry_after_s)
