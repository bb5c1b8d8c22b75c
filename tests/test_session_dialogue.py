"""Timeline tests of the call core with a dialogue engine: Rasa's turns, escalation, and safety scripts.

Rasa's answers are injected as the `DialogueResolved` events the call actor delivers (the session's
real input); the real Rasa server is exercised end to end in tests/test_e2e_dialogue.py.
"""

from __future__ import annotations

import numpy as np

from iasovoice.core import events as ev
from iasovoice.core.session import Phase
from iasovoice.dialogue.turn import DialogueTurn
from tests.timeline import Timeline, recording, safety_settings, silence

SPEECH = "LDC93S1_8k.wav"
TONE = np.full(8000, 700, dtype=np.int16)  # 1 s of "speech" from TTS at 8 kHz


def _utter(t: Timeline, text: str) -> tuple[str, list[ev.Action]]:
    """The caller says something; return its utterance id and the actions its transcript produced."""
    before = len(t.of_type(ev.Transcribe))
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    uid = t.of_type(ev.Transcribe)[before].utterance_id
    return uid, t.apply(ev.TranscriptReady(uid, text, t.now))


def _synthesize_all(t: Timeline, actions: list[ev.Action], audio: np.ndarray = TONE) -> list[ev.Action]:
    out: list[ev.Action] = []
    for action in actions:
        if isinstance(action, ev.Synthesize):
            out += t.apply(ev.SpeechReady(action.reply_id, action.segment, audio, t.now))
    return out


def _spoken(actions: list[ev.Action]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, ev.Synthesize))


def test_each_utterance_goes_to_rasa_and_its_response_is_spoken_as_written() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, actions = _utter(t, "i'd like to book an appointment")
    assert [a for a in actions if isinstance(a, ev.InterpretUtterance)] == [
        ev.InterpretUtterance(uid, "i'd like to book an appointment")
    ]
    assert not any(isinstance(a, ev.GenerateReply) for a in actions)
    turn = DialogueTurn(
        intent="book_appointment", confidence=0.97, slots={"appointment_action": "book"},
        responses=("What day would suit you?",),
    )
    actions = t.apply(ev.DialogueResolved(uid, turn, t.now))
    assert _spoken(actions) == "What day would suit you?"
    assert not any(isinstance(a, ev.GenerateReply) for a in actions)
    uid2, _ = _utter(t, "next tuesday")
    t.apply(ev.DialogueResolved(uid2, DialogueTurn(
        intent="inform", slots={"appointment_action": "book", "appointment_date": "2026-12-08"},
        responses=("And what time?",)), t.now))
    assert t.session.dialogue.slots == {"appointment_action": "book", "appointment_date": "2026-12-08"}
    assert t.session.dialogue.intents == {uid: "book_appointment", uid2: "inform"}
    actions = t.apply(ev.HangupRequested("caller_hangup", t.now))
    records = [a for a in actions if isinstance(a, ev.WriteRecords)]
    assert records and records[0].slots["appointment_date"] == "2026-12-08"


def test_an_llm_hand_off_carries_the_slots_to_the_llm() -> None:
    t = Timeline.start(use_dialogue_engine=True, llm_context="Recorded: {slots}")
    uid, _ = _utter(t, "i've had a rash on my arm for three days")
    turn = DialogueTurn(intent="report_symptom", slots={"body_part": ["arm"], "duration": "three days"},
                        llm_handoff=True)
    actions = t.apply(ev.DialogueResolved(uid, turn, t.now))
    generate = [a for a in actions if isinstance(a, ev.GenerateReply)]
    assert len(generate) == 1
    assert '"duration": "three days"' in generate[0].messages[0]["content"]


def test_rasa_down_the_turn_goes_on_with_the_llm_and_is_flagged() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, _ = _utter(t, "can i get my blood pressure pills refilled")
    actions = t.apply(ev.DialogueUnavailable(uid, "timeout", t.now))
    assert any(isinstance(a, ev.GenerateReply) for a in actions)
    assert "dialogue_degraded" in t.session.dialogue.flags


def test_the_rule_layer_escalates_at_once_and_rasa_does_not_answer_twice() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, actions = _utter(t, "my husband can’t breathe")
    transfers = [a for a in actions if isinstance(a, ev.SendTransfer)]
    assert transfers == [ev.SendTransfer("emergency", "emergency_services", "rules")]
    assert _spoken(actions) == safety_settings().emergency_message
    assert any(isinstance(a, ev.InterpretUtterance) for a in actions), "Rasa still hears the turn"
    later = t.apply(ev.DialogueResolved(uid, DialogueTurn(intent="emergency", confidence=0.99,
                                                          escalation="emergency"), t.now))
    assert not any(isinstance(a, (ev.Synthesize, ev.SendTransfer, ev.GenerateReply)) for a in later)


def test_a_rasa_emergency_the_rules_missed_escalates_within_the_turn() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, actions = _utter(t, "something is very wrong with my mother she is not acting right")
    assert not any(isinstance(a, ev.SendTransfer) for a in actions), "a phrasing the rules do not know"
    turn = DialogueTurn(intent="emergency", confidence=0.6, escalation="emergency")
    actions = t.apply(ev.DialogueResolved(uid, turn, t.now))
    assert [a.kind for a in actions if isinstance(a, ev.SendTransfer)] == ["emergency"]
    assert _spoken(actions) == safety_settings().emergency_message
    assert not any(isinstance(a, ev.GenerateReply) for a in actions)


def test_a_crisis_script_is_spoken_in_full_when_the_caller_keeps_talking() -> None:
    """The old single deferred slot let the next reply overwrite a crisis script still waiting for TTS."""
    t = Timeline.start(use_dialogue_engine=True)
    _, actions = _utter(t, "i don't want to be alive anymore")
    crisis = [a for a in actions if isinstance(a, ev.Synthesize)]
    assert " ".join(a.text for a in crisis) == safety_settings().crisis_message
    assert "crisis_line_given" not in t.session.dialogue.flags, "planned is not given"
    # The caller talks over it twice before its audio exists; Rasa answers those turns normally.
    for text in ("hello are you there", "i said i want to die"):
        uid_n, actions_n = _utter(t, text)
        assert not any(isinstance(a, (ev.SendClear, ev.CancelReply)) for a in actions_n)
        t.apply(ev.DialogueResolved(uid_n, DialogueTurn(intent="greet", responses=("Hi, I'm here.",)), t.now))
    # Now the crisis audio arrives, out of order: it is queued whole, protected, and plays to the end.
    before = len(t.of_type(ev.SendAudio))
    _synthesize_all(t, list(reversed(crisis)))
    frames_expected = len(crisis) * len(TONE) // 160
    t.speak(recording(SPEECH))  # more caller speech while it plays: no barge-in on a safety script
    t.wait(len(crisis) * 1.0 + 1.0)
    sent = [a for a in t.of_type(ev.SendAudio)[before:] for f in a.frames]
    assert len(sent) >= frames_expected
    assert not t.of_type(ev.SendClear)
    assert "crisis_line_given" in t.session.dialogue.flags
    # The reply to the caller's later turn comes after the script, not instead of it.
    assert any(isinstance(a, ev.Synthesize) and a.text == "Hi, I'm here." for a in t.of_type(ev.Synthesize))


def test_the_given_flag_waits_for_the_last_frame_to_play() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    _, actions = _utter(t, "i took the whole bottle of my sleeping pills")
    synth = [a for a in actions if isinstance(a, ev.Synthesize)]
    _synthesize_all(t, synth)
    t.wait(0.5)
    assert "crisis_line_given" not in t.session.dialogue.flags and "emergency_message_given" not in t.session.dialogue.flags
    t.wait(len(synth) * 1.0 + 0.5)
    assert {"crisis_line_given", "emergency_message_given"} & set(t.session.dialogue.flags)


def test_an_emergency_cuts_off_an_llm_reply_that_is_playing() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, _ = _utter(t, "i have a question about my pills")
    actions = t.apply(ev.DialogueResolved(uid, DialogueTurn(intent="medication_question", llm_handoff=True), t.now))
    rid = next(a for a in actions if isinstance(a, ev.GenerateReply)).reply_id
    synth = t.apply(ev.ReplyTextDelta(rid, "Sure. Which medication is it? ", t.now))
    _synthesize_all(t, synth, np.full(40000, 300, dtype=np.int16))  # 5 s of reply
    t.wait(0.4)
    _, actions = _utter(t, "oh no my chest pains are back and spreading to my arm")
    assert any(isinstance(a, ev.SendTransfer) for a in actions)
    assert any(isinstance(a, ev.SendClear) for a in t.of_type(ev.SendClear))
    assert _spoken(actions) == safety_settings().emergency_message


def test_a_call_that_ends_before_the_script_played_says_so() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    _, actions = _utter(t, "my baby is turning blue")
    _synthesize_all(t, actions)
    t.wait(0.3)
    t.apply(ev.HangupRequested("caller_hangup", t.now))
    flags = t.session.dialogue.flags
    assert "emergency_message_incomplete" in flags and "emergency_message_given" not in flags
    script = next(turn for turn in t.session.transcript if turn.text.startswith(safety_settings().emergency_message))
    assert script.text.endswith("[interrupted: the call ended before this message finished]")


def test_a_failed_segment_is_not_counted_as_given() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    _, actions = _utter(t, "she swallowed drain cleaner")
    synth = [a for a in actions if isinstance(a, ev.Synthesize)]
    t.apply(ev.SpeechFailed(synth[0].reply_id, synth[0].segment, "timeout", t.now))
    _synthesize_all(t, synth[1:])
    t.wait(len(synth) + 1.0)
    assert "emergency_message_incomplete" in t.session.dialogue.flags
    assert "emergency_message_given" not in t.session.dialogue.flags


def test_an_emergency_during_the_greeting_plays_right_after_it() -> None:
    t = Timeline.start(greet=False, use_dialogue_engine=True)
    greeting = t.of_type(ev.Synthesize)
    _, actions = _utter(t, "i think i'm having a heart attack")
    assert any(isinstance(a, ev.SendTransfer) for a in actions), "the transfer is not held back"
    assert not _spoken(actions), "the greeting's audio is still being made"
    queued = _synthesize_all(t, greeting)
    assert _spoken(queued) == safety_settings().emergency_message


def test_a_request_for_a_person_is_spoken_and_transferred() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid, _ = _utter(t, "can i talk to a real person")
    turn = DialogueTurn(intent="ask_human", responses=("I'll connect you with our staff now.",), transfer="staff")
    actions = t.apply(ev.DialogueResolved(uid, turn, t.now))
    assert [a for a in actions if isinstance(a, ev.SendTransfer)] == [ev.SendTransfer("staff", "staff", "rasa")]
    assert _spoken(actions) == "I'll connect you with our staff now."
    assert not any(isinstance(a, ev.GenerateReply) for a in actions)


def test_an_outbound_call_opens_with_rasas_script_or_the_greeting_without_it() -> None:
    t = Timeline.start(greet=False, use_dialogue_engine=True, opening_trigger="EXTERNAL_checkin")
    opening = t.of_type(ev.InterpretUtterance)
    assert opening == [ev.InterpretUtterance("open", "", trigger="EXTERNAL_checkin")]
    actions = t.apply(ev.DialogueResolved("open", DialogueTurn(
        intent="EXTERNAL_checkin", responses=("Hi, this is the clinic calling for your check-in.",)), t.now))
    assert _spoken(actions) == "Hi, this is the clinic calling for your check-in."
    t2 = Timeline.start(greet=False, use_dialogue_engine=True, opening_trigger="EXTERNAL_checkin")
    actions = t2.apply(ev.DialogueUnavailable("open", "connection refused", t2.now))
    assert _spoken(actions).startswith("Hello")


def test_a_stale_rasa_answer_is_not_spoken_over_a_newer_turn() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid1, _ = _utter(t, "i need to book")
    uid2, _ = _utter(t, "actually i need a refill")
    stale = t.apply(ev.DialogueResolved(uid1, DialogueTurn(intent="book_appointment",
                                                           responses=("What day?",)), t.now))
    assert not _spoken(stale)
    fresh = t.apply(ev.DialogueResolved(uid2, DialogueTurn(intent="refill_medication",
                                                           responses=("Which medication?",)), t.now))
    assert _spoken(fresh) == "Which medication?"
    assert t.session.phase == Phase.ACTIVE


def test_an_emergency_said_while_hanging_up_is_flagged_for_the_clinician() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    t.speak(recording(SPEECH)[:12000])  # speech cut off by the hang-up
    actions = t.apply(ev.HangupRequested("caller_hangup", t.now))
    uid = next(a for a in actions if isinstance(a, ev.Transcribe)).utterance_id
    actions = t.apply(ev.TranscriptReady(uid, "my chest hurts so bad", t.now))
    assert "emergency_detected_after_hangup" in t.session.dialogue.flags
    assert not any(isinstance(a, (ev.Synthesize, ev.SendTransfer)) for a in actions)
    assert any(isinstance(a, ev.WriteRecords) for a in actions)
