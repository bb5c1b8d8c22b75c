"""Escalation IO actor: sets the `IasoEscalation` contact attribute through Amazon Connect.

The call actor has already spoken the safety script and sent the websocket `transfer`; this is the
third, slowest channel (a network call to Connect), so it runs here and never blocks a call. A
throttled or failing Connect is retried a few times with backoff, then logged and counted: the
caller has the safety message either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from actors import names
from iasovoice.aws.escalation import EscalationError, set_escalation
from iasovoice.aws.settings import ConnectSettings

log = logging.getLogger(__name__)
ATTEMPTS = 3


@ray.remote(num_cpus=0, max_concurrency=16)
class EscalationActor:
    def __init__(self, settings: ConnectSettings) -> None:
        import boto3

        self._settings = settings
        self._client: Any = boto3.client("connect", region_name=settings.region)
        self._metrics = ray.get_actor(names.METRICS)

    async def set(self, contact_id: str, kind: str) -> bool:
        """True once Connect has the attribute; False after the retries (logged and counted)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await asyncio.to_thread(set_escalation, self._client, self._settings.instance_id, contact_id, kind)
                return True
            except EscalationError as error:
                if not error.retryable or attempt == ATTEMPTS:
                    log.error("contact %s: escalation attribute not set (%s)", contact_id, error.code or error)
                    self._metrics.record.remote("EscalationAttributeErrors", 1, "Count")
                    return False
                await asyncio.sleep(0.2 * 2 ** attempt)
        return False
