"""Timeline tests of a call going on after its actor died: snapshot, resume, and the fallbacks spoken.

The snapshot crosses a JSON round trip, as it does through the encrypted store; the resumed session is
a new `CallSession` with a fresh VAD, as on a replacement actor. The real crash (ray.kill of a live
call's actor) is in tests/test_e2e_faults.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from iasovoice.core import events as ev
from iasovoice.core.session import CallSession, Phase, SessionSettings
from iasovoice.dialogue.turn import DialogueTurn
from iasovoice.vad.silero import SileroVAD
from tests.timeline import Timeline, fallback_scripts, recording, safety_settings, silence

SPEECH = "LDC93S1_8k.wav"
TONE = np.full(8000, 700, dtype=np.int16)


def _utter(t: Timeline, text: str) -> str:
    before = len(t.of_type(ev.Transcribe))
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    uid = t.of_type(ev.Transcribe)[before].utterance_id
    t.apply(ev.TranscriptReady(uid, text, t.now))
    return uid


def _replacement(t: Timeline) -> Timeline:
    """A new session for the same call, as a replacement actor builds it."""
    settings = SessionSettings(
        call_id=t.session.settings.call_id, sample_rate=8000, greeting="Hello.", safety=safety_settings(),
        scripts=fallback_scripts(), use_dialogue_engine=t.session.settings.use_dialogue_engine,
    )
    return Timeline(CallSession(settings, SileroVAD(8000)), now=t.now + 1000.0)


def _spoken(actions: list[ev.Action]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, ev.Synthesize))


def test_resumed_call_keeps_turns_slots_and_counters_and_says_it_lost_the_caller() -> None:
    t = Timeline.start(use_dialogue_engine=True)
    uid = _utter(t, "i need to book an appointment")
    t.apply(ev.DialogueResolved(uid, DialogueTurn(
        intent="book_appointment", slots={"appointment_action": "book"}, responses=("What day?",)), t.now))
    t.apply(ev.DtmfReceived("12", t.now))
    state = json.loads(json.dumps(t.session.snapshot(t.now)))

    new = _replacement(t)
    actions = new.session.resume(state, new.now)
    assert new.session.phase == Phase.ACTIVE
    assert [turn.text for turn in new.session.transcript] == [turn.text for turn in t.session.transcript]
    assert new.session.dialogue.slots == {"appointment_action": "book"}
    assert new.session.dialogue.intents == {uid: "book_appointment"}
    assert new.session.dialogue.dtmf == "12"
    assert "call_actor_recovered" in new.session.dialogue.flags
    assert _spoken(actions) == fallback_scripts().resumed
    for action in actions:
        if isinstance(action, ev.Synthesize):
            new.apply(ev.SpeechReady(action.reply_id, action.segment, TONE, new.now))
    new.wait(3.0)
    # Ids go on from where the dead actor stopped, so no turn of the note is overwritten.
    uid2 = _utter(new, "next monday")
    assert int(uid2[1:]) == int(uid[1:]) + 1
    new.apply(ev.HangupRequested("caller_hangup", new.now))
    write = new.of_type(ev.WriteRecords)
    assert write and write[0].slots == {"appointment_action": "book"}
    before = [turn.text for turn in t.session.transcript]
    texts = [turn.text for turn in new.session.transcript]
    assert texts[:len(before)] == before and "i need to book an appointment" in before
    assert texts[len(before)] == fallback_scripts().resumed and texts[-1] == "next monday"


def test_an_emergency_script_not_heard_to_the_end_is_spoken_again_without_a_second_transfer() -> None:
    t = Timeline.start()
    _utter(t, "my father collapsed and he is not breathing")
    assert t.of_type(ev.SendTransfer)
    assert "emergency_detected" in t.session.dialogue.flags
    assert "emergency_message_given" not in t.session.dialogue.flags  # died before it was played out
    state = json.loads(json.dumps(t.session.snapshot(t.now)))

    new = _replacement(t)
    actions = new.session.resume(state, new.now)
    assert _spoken(actions) == safety_settings().emergency_message
    assert not any(isinstance(a, ev.SendTransfer) for a in actions)  # already sent by the dead actor
    # This time it is heard whole, and the note says so.
    for action in actions:
        if isinstance(action, ev.Synthesize):
            new.apply(ev.SpeechReady(action.reply_id, action.segment, TONE, new.now))
    new.wait(8.0)  # one second of audio per sentence of the script
    assert "emergency_message_given" in new.session.dialogue.flags


def test_a_script_already_heard_is_not_repeated() -> None:
    t = Timeline.start()
    _utter(t, "i took too many pills and i want to die")
    for action in t.of_type(ev.Synthesize):
        t.apply(ev.SpeechReady(action.reply_id, action.segment, TONE, t.now))
    t.wait(8.0)
    assert "crisis_line_given" in t.session.dialogue.flags
    new = _replacement(t)
    actions = new.session.resume(json.loads(json.dumps(t.session.snapshot(t.now))), new.now)
    assert _spoken(actions) == fallback_scripts().resumed


def test_revision_moves_with_every_change_a_resume_needs() -> None:
    t = Timeline.start()
    seen = t.session.revision
    _utter(t, "hello there")
    assert t.session.revision > seen
    seen = t.session.revision
    t.wait(0.5)  # ticks alone change nothing worth storing
    t.apply(ev.DtmfReceived("9", t.now))
    assert t.session.revision > seen


def test_resume_refuses_another_calls_state() -> None:
    t = Timeline.start()
    state = t.session.snapshot(t.now)
    state["call_id"] = "someone-else"
    with pytest.raises(ValueError, match="not this call"):
        _replacement(t).session.resume(state, 0.0)


def test_a_failed_transcription_is_answered_in_words() -> None:
    t = Timeline.start()
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    uid = t.of_type(ev.Transcribe)[-1].utterance_id
    actions = t.apply(ev.TranscriptionFailed(uid, "TimeoutError", t.now))
    assert _spoken(actions) == fallback_scripts().asr_failed
    assert "asr_failed" in t.session.dialogue.flags


def test_a_failed_transcription_is_not_answered_when_the_caller_has_spoken_again() -> None:
    t = Timeline.start()
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    first, second = (a.utterance_id for a in t.of_type(ev.Transcribe)[-2:])
    actions = t.apply(ev.TranscriptionFailed(first, "TimeoutError", t.now))
    assert _spoken(actions) == ""
    actions = t.apply(ev.TranscriptReady(second, "can you hear me now", t.now))
    assert any(isinstance(a, ev.GenerateReply) for a in actions)
