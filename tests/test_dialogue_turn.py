"""Reading Rasa's answers and scoring the dialogue layer: the pure parts, without a Rasa server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iasovoice.dialogue.evaluation import Example, load_examples, predict, score, strip_markup
from iasovoice.dialogue.safety_rules import detect
from iasovoice.dialogue.turn import escalation_from_ranking, turn_from_rasa

# Shapes as Rasa 3.6's REST channel and tracker endpoint return them.
TRACKER = {
    "sender_id": "call-1",
    "slots": {"appointment_date": "2026-12-08", "requested_slot": "appointment_time", "symptom": None,
              "body_part": [], "appointment_action": "book", "session_started_metadata": None},
    "latest_message": {
        "text": "next tuesday",
        "intent": {"name": "inform", "confidence": 0.91},
        "entities": [{"entity": "date", "start": 0, "end": 12, "value": "next tuesday", "extractor": "DIETClassifier"}],
        "intent_ranking": [{"name": "inform", "confidence": 0.91}, {"name": "book_appointment", "confidence": 0.05}],
    },
}


def test_a_spoken_response_and_the_slots_come_back_as_a_turn() -> None:
    turn = turn_from_rasa([{"recipient_id": "call-1", "text": "And what time of day works for you?"}], TRACKER, 0.35)
    assert turn.intent == "inform" and turn.confidence == pytest.approx(0.91)
    assert turn.responses == ("And what time of day works for you?",)
    assert turn.slots == {"appointment_date": "2026-12-08", "appointment_action": "book"}
    assert [(e.entity, e.value) for e in turn.entities] == [("date", "next tuesday")]
    assert not turn.llm_handoff and turn.escalation is None


def test_a_slot_filled_and_reset_in_the_same_turn_still_reaches_the_note() -> None:
    tracker = {
        "slots": {"appointment_reason": None, "appointment_date": None},
        "latest_message": {"intent": {"name": "inform", "confidence": 0.9}},
        "events": [
            {"event": "slot", "name": "appointment_date", "value": "2026-12-08"},
            {"event": "user", "text": "a follow up for my blood pressure"},
            {"event": "action", "name": "appointment_form"},
            {"event": "slot", "name": "appointment_time", "value": "a follow up for my blood pressure"},
            {"event": "slot", "name": "appointment_reason", "value": "a follow up for my blood pressure"},
            {"event": "slot", "name": "appointment_time", "value": None},  # the validator refused it
            {"event": "slot", "name": "appointment_reason", "value": "follow up for my blood pressure"},
            {"event": "slot", "name": "requested_slot", "value": None},
            {"event": "action", "name": "utter_appointment_done"},
            {"event": "bot", "text": "Okay, I have requested an appointment."},
            {"event": "action", "name": "action_reset_appointment"},
            {"event": "slot", "name": "appointment_reason", "value": None},
            {"event": "slot", "name": "appointment_date", "value": None},
            {"event": "action", "name": "action_listen"},
        ],
    }
    turn = turn_from_rasa([], tracker, 0.5)
    # Set before this turn: not repeated; refused by the validator: absent; reset after: still there.
    assert turn.slots == {"appointment_reason": "follow up for my blood pressure"}


def test_signals_hand_the_turn_to_the_llm_or_escalate_or_transfer() -> None:
    assert turn_from_rasa([{"custom": {"iasovoice": "llm_reply"}}], TRACKER, 0.35).llm_handoff
    assert turn_from_rasa([{"custom": {"iasovoice": "escalate", "kind": "crisis"}}], TRACKER, 0.35).escalation == "crisis"
    staff = turn_from_rasa([{"text": "One moment."}, {"custom": {"iasovoice": "transfer", "target": "staff"}}], TRACKER, 0.35)
    assert staff.transfer == "staff" and staff.responses == ("One moment.",)


def test_an_escalating_intent_anywhere_in_the_ranking_escalates() -> None:
    ranking = [{"name": "refill_medication", "confidence": 0.5}, {"name": "emergency", "confidence": 0.4},
               {"name": "self_harm", "confidence": 0.1}]
    assert escalation_from_ranking(ranking, 0.35) == ("emergency", 0.4)
    assert escalation_from_ranking(ranking, 0.45) == (None, 0.0)
    both = [{"name": "emergency", "confidence": 0.5}, {"name": "self_harm", "confidence": 0.45}]
    assert escalation_from_ranking(both, 0.35)[0] == "crisis", "the crisis line outranks"


def test_markup_and_csv_examples(tmp_path: Path) -> None:
    assert strip_markup("pain in my [left arm](body_part) for [two hours](duration)") == (
        "pain in my left arm for two hours", frozenset({("body_part", "left arm"), ("duration", "two hours")}))
    csv_file = tmp_path / "set.csv"
    csv_file.write_text('text,intent\n"my chest hurts",emergency\nhello there,greet\n')
    assert [e.intent for e in load_examples(csv_file)] == ["emergency", "greet"]
    with pytest.raises(Exception, match="text,intent"):
        bad = tmp_path / "bad.csv"
        bad.write_text("sentence,label\nx,y\n")
        load_examples(bad)


def test_the_shipped_held_out_split_is_never_trained_on() -> None:
    root = Path(__file__).resolve().parents[1] / "rasa"

    def letters(text: str) -> str:  # "yeah, that's correct" and "yeah thats correct" are one example
        return re.sub(r"[^a-z]", "", text.lower())

    train = {letters(e.text) for e in load_examples(root / "data" / "nlu")}
    held_out = load_examples(root / "tests" / "nlu")
    assert len(held_out) >= 300
    assert not [e.text for e in held_out if letters(e.text) in train]
    per_intent: dict[str, int] = {}
    for e in load_examples(root / "data" / "nlu"):
        per_intent[e.intent] = per_intent.get(e.intent, 0) + 1
    assert min(per_intent.values()) >= 40, per_intent


def test_predict_combines_the_layers_as_a_call_does_and_scores() -> None:
    chest = Example("my chest hurts real bad", "emergency")
    fine = Example("no chest pain just a cough", "report_symptom")
    greet = Example("hello", "greet")
    rasa_symptom = {"intent": {"name": "report_symptom", "confidence": 0.8},
                    "intent_ranking": [{"name": "report_symptom", "confidence": 0.8}], "entities": []}
    rasa_greet = {"intent": {"name": "greet", "confidence": 0.99}, "entities": []}
    p_chest = predict(chest, detect(chest.text), rasa_symptom, 0.35)
    assert p_chest.escalation == "emergency" and p_chest.intent == "emergency", "the rules catch what Rasa missed"
    p_fine = predict(fine, detect(fine.text), rasa_symptom, 0.35)
    assert p_fine.escalation is None and p_fine.intent == "report_symptom"
    report = score([p_chest, p_fine, predict(greet, None, rasa_greet, 0.35)])
    assert report.emergency_recall == 1.0 and report.false_escalation_rate == 0.0
    assert report.macro_f1 == 1.0 and report.emergency_support == 1 and report.non_emergency_support == 2
