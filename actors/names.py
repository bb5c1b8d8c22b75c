"""Names of the long-lived actors, so the gateway, the CLI and each call actor find them the same way."""

from __future__ import annotations

DIRECTORY = "iasovoice:call-directory"
STORAGE = "iasovoice:storage"
METRICS = "iasovoice:metrics"


def tts_actor_name(index: int) -> str:
    return f"iasovoice:tts-{index}"


def call_actor_name(call_id: str) -> str:
    return f"iasovoice:call:{call_id}"


def model_router_name(index: int) -> str:
    return f"iasovoice:model-router-{index}"


def dialogue_actor_name(index: int) -> str:
    return f"iasovoice:dialogue-{index}"


ESCALATION = "iasovoice:escalation"
