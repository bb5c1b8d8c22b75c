"""What the dialogue engine decided for one caller utterance, as plain data the call core can act on.

Rasa answers with messages (text to speak, or a `custom` payload naming a hand-off) and a tracker
(intent, entities, slots). This module turns that into a `DialogueTurn` without any I/O, so the same
reading is used by a live call, by `iasovoice eval nlu` and by the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EscalationKind = Literal["emergency", "crisis"]

# Intents whose presence escalates the call, and the script each one gets.
ESCALATING_INTENTS: dict[str, EscalationKind] = {"emergency": "emergency", "self_harm": "crisis"}
# The `iasovoice` key of a Rasa response's custom payload (rasa/domain.yml, utter_signal_*).
SIGNAL_KEY = "iasovoice"


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class DialogueTurn:
    intent: str | None = None
    confidence: float = 0.0
    entities: tuple[Entity, ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    responses: tuple[str, ...] = ()  # spoken as they are, in order
    llm_handoff: bool = False  # Rasa handed the turn to the LLM (utter_signal_llm_reply)
    escalation: EscalationKind | None = None
    transfer: str | None = None  # "staff": the caller asked for a person


def escalation_from_ranking(
    ranking: list[dict[str, Any]], threshold: float
) -> tuple[EscalationKind | None, float]:
    """The escalation an intent ranking calls for: any escalating intent at or above `threshold`.

    The whole ranking counts, not only the top intent: "my chest hurts and I need a refill" may rank
    refill first and emergency second, and the second still escalates. Crisis outranks emergency.
    """
    found: dict[EscalationKind, float] = {}
    for item in ranking:
        kind = ESCALATING_INTENTS.get(str(item.get("name")))
        confidence = float(item.get("confidence") or 0.0)
        if kind is not None and confidence >= threshold:
            found[kind] = max(found.get(kind, 0.0), confidence)
    for kind in ("crisis", "emergency"):
        if kind in found:
            return kind, found[kind]  # type: ignore[return-value]
    return None, 0.0


def entities_from(parse: dict[str, Any]) -> tuple[Entity, ...]:
    return tuple(
        Entity(str(e.get("entity")), str(e.get("value")), e.get("start"), e.get("end"))
        for e in parse.get("entities") or []
        if e.get("entity") is not None and e.get("value") is not None
    )


def turn_from_rasa(
    messages: list[dict[str, Any]], tracker: dict[str, Any], threshold: float
) -> DialogueTurn:
    """Read Rasa's REST-channel messages and the conversation tracker into one `DialogueTurn`."""
    latest = tracker.get("latest_message") or {}
    intent = latest.get("intent") or {}
    ranking = latest.get("intent_ranking") or ([intent] if intent else [])
    escalation, _ = escalation_from_ranking(ranking, threshold)
    responses: list[str] = []
    llm_handoff = False
    transfer: str | None = None
    for message in messages:
        custom = message.get("custom")
        if isinstance(custom, dict) and SIGNAL_KEY in custom:
            signal = custom[SIGNAL_KEY]
            if signal == "llm_reply":
                llm_handoff = True
            elif signal == "escalate" and escalation is None:
                escalation = "crisis" if custom.get("kind") == "crisis" else "emergency"
            elif signal == "transfer":
                transfer = str(custom.get("target") or "staff")
        text = message.get("text")
        if isinstance(text, str) and text.strip():
            responses.append(text.strip())
    slots = {**_slots_set_this_turn(tracker), **_filled(tracker.get("slots") or {})}
    return DialogueTurn(
        intent=intent.get("name"),
        confidence=float(intent.get("confidence") or 0.0),
        entities=entities_from(latest),
        slots=slots,
        responses=tuple(responses),
        llm_handoff=llm_handoff,
        escalation=escalation,
        transfer=transfer,
    )


def _filled(slots: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in slots.items() if value not in (None, [], "") and name not in _INTERNAL_SLOTS}


def _slots_set_this_turn(tracker: dict[str, Any]) -> dict[str, Any]:
    """Values slots took since the caller's last message, even if reset before the turn ended.

    A form's last answer and its reset after the confirmation happen in one turn ("...for my blood
    pressure" -> confirmation -> slots cleared for a second request), so the final slots alone would
    lose the reason the caller just gave; the note must have it.
    """
    events = tracker.get("events") or []
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    latest: dict[str, Any] = {}
    resetting = False
    for event in events[last_user + 1:]:
        if event.get("event") == "action":  # Rasa logs an action, then the events it returned
            resetting = str(event.get("name") or "").startswith(RESET_ACTION_PREFIX)
        elif event.get("event") == "slot" and not resetting:
            # The last value wins: a form first sets the raw answer, then its validator's verdict
            # (None when the answer was not a time), and the verdict is what counts.
            latest[str(event.get("name"))] = event.get("value")
    return _filled(latest)


# rasa/actions: the actions that clear a finished request's slots (their values stay on the note).
RESET_ACTION_PREFIX = "action_reset_"


# Rasa's own bookkeeping slots: not facts about the patient.
_INTERNAL_SLOTS = frozenset({
    "requested_slot", "session_started_metadata", "call_type", "appointment_date_spoken", "appointment_time_spoken",
})
