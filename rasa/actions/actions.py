"""Custom actions for Rasa's action server: the forms' slot validation.

Callers say dates and times as Whisper writes them ("next tuesday", "three thirty pm"); the form keeps
them as ISO dates and 24-hour times, so the note and the booking system read one format. A value that
cannot be read is refused (the slot stays empty) and the form asks again rather than guessing.
"""

from __future__ import annotations

import datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.normalize import normalise_date, normalise_time

Slots = dict[str, Any]


def _text(value: Any) -> str:
    """An entity may fill a slot with a list when a caller says two; the first is the answer."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()


def spoken_date(iso: str) -> str:
    """'2026-12-08' -> 'Tuesday, December 8': what the confirmation says (TTS reads ISO badly)."""
    day = datetime.date.fromisoformat(iso)
    return f"{day:%A}, {day:%B} {day.day}"


def spoken_time(hhmm: str) -> str:
    """'15:30' -> '3:30 PM', '09:00' -> '9 AM'."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


APPOINTMENT_SLOTS = (
    "appointment_action", "appointment_date", "appointment_time", "appointment_reason",
    "appointment_date_spoken", "appointment_time_spoken",
)


def _candidates(slot_value: Any, tracker: Tracker) -> list[str]:
    """The extracted value, then the whole utterance: an entity is often a fragment of the answer
    ("afternoon" out of "three thirty in the afternoon"), and the parsers refuse text with leftovers."""
    latest = str((tracker.latest_message or {}).get("text") or "")
    return [text for text in (_text(slot_value), latest.strip()) if text]


_REASON_LEAD = ("it's for", "it is for", "it's a", "it is a", "it's", "it is", "just", "for a", "for", "um", "uh")


def _reason_text(text: str) -> str:
    """The reason as the caller said it, without a leading "it's for" / "um" and the final full stop."""
    reason = text.strip().rstrip(".!?").strip()
    changed = True
    while changed:
        changed = False
        for lead in _REASON_LEAD:
            if reason.lower().startswith(lead + " "):
                reason, changed = reason[len(lead) + 1:].lstrip(", "), True
    return reason


class ValidateAppointmentForm(FormValidationAction):
    def name(self) -> str:
        return "validate_appointment_form"

    def validate_appointment_date(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        today = datetime.date.today()
        iso = next((d for d in (normalise_date(t, today) for t in _candidates(slot_value, tracker)) if d), None)
        return {"appointment_date": iso, "appointment_date_spoken": spoken_date(iso) if iso else None}

    def validate_appointment_time(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        hhmm = next((t for t in (normalise_time(c) for c in _candidates(slot_value, tracker)) if t), None)
        return {"appointment_time": hhmm, "appointment_time_spoken": spoken_time(hhmm) if hhmm else None}

    def validate_appointment_reason(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        reason = _text(slot_value)
        if tracker.get_slot("requested_slot") == "appointment_reason":
            # Asked for the reason, the whole answer is the reason ("a follow up for my blood pressure"),
            # not the fragment an entity caught ("follow up").
            reason = _reason_text(str((tracker.latest_message or {}).get("text") or reason))
        return {"appointment_reason": reason if len(reason) >= 3 else None}


class ValidateRefillForm(FormValidationAction):
    def name(self) -> str:
        return "validate_refill_form"

    def validate_medication(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        medication = _text(slot_value).lower()
        return {"medication": medication if len(medication) >= 3 else None}


class ResetAppointment(Action):
    """After the confirmation, a second request on the same call starts from empty slots.

    IasoVoice keeps every value it was told (the note has them); Rasa's form must not reuse them.
    """

    def name(self) -> str:
        return "action_reset_appointment"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return [SlotSet(slot, None) for slot in APPOINTMENT_SLOTS]


class ResetRefill(Action):
    def name(self) -> str:
        return "action_reset_refill"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return [SlotSet("medication", None), SlotSet("dose", None)]
