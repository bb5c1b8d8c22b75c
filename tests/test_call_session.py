"""Timeline tests of the I/O-free call core on real recordings, real Silero VAD and a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from iasovoice.core import events as ev
from iasovoice.core.session import Phase
from tests.timeline import FRAME_S, Timeline, recording, safety_settings, silence

SPEECH = "LDC93S1_8k.wav"  # 2.9 s, one sentence


def _speak_greeting(t: Timeline, seconds: float = 3.0) -> None:
    """Deliver the greeting's synthesized audio, as the TTS actor would."""
    synth = t.of_type(ev.Synthesize)
    assert synth and synth[0].text.startswith("Hello")
    for action in synth:
        t.apply(ev.SpeechReady(action.reply_id, action.segment, recording("OSR_us_000_0034_8k.wav")[: int(8000 * seconds / len(synth))], t.now))


def test_agent_speaks_first_and_audio_is_paced() -> None:
    t = Timeline.start(greet=False)
    assert t.session.phase == Phase.ACTIVE
    _speak_greeting(t, 3.0)
    released_at_once = sum(len(a.frames) for a in t.of_type(ev.SendAudio))
    # Only the playout lead (120 ms = 6 frames) goes out ahead of real time, never the whole reply.
    assert 1 <= released_at_once <= 7
    t.wait(1.0)
    released = sum(len(a.frames) for a in t.of_type(ev.SendAudio))
    assert abs(released - (1.0 / FRAME_S + 6)) <= 2


def test_endpointing_after_silence() -> None:
    t = Timeline.start()
    speech = recording(SPEECH)
    per_frame = t.speak(speech)
    assert not t.of_type(ev.Transcribe), "no endpoint while the caller is still speaking"
    per_frame = t.speak(silence(1.5))
    hits = [index for index, actions in per_frame if any(isinstance(a, ev.Transcribe) for a in actions)]
    assert len(hits) == 1
    # The sentence's tail is quiet (~0.3 s); the endpoint comes end_silence_ms (0.7 s) after speech stops.
    assert 0.2 <= hits[0] * FRAME_S <= 1.0
    utterance = t.of_type(ev.Transcribe)[0]
    assert not utterance.partial
    assert 2.0 * 8000 <= len(utterance.samples) <= 3.3 * 8000


def _agent_replying(t: Timeline, seconds: float = 5.0) -> str:
    """Caller turn → LLM reply of one long sentence whose audio is playing."""
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    utterance = t.of_type(ev.Transcribe)[-1]
    actions = t.apply(ev.TranscriptReady(utterance.utterance_id, "When is my appointment?", t.now))
    rid = next(a for a in actions if isinstance(a, ev.GenerateReply)).reply_id
    t.apply(ev.ReplyTextDelta(rid, "Your appointment is on Tuesday at ten in the morning with doctor Lee.", t.now))
    t.apply(ev.ReplyTextDone(rid, t.now))
    t.apply(ev.SpeechReady(rid, 0, recording("OSR_us_000_0034_8k.wav")[: int(8000 * seconds)], t.now))
    return rid


def test_greeting_is_not_cut_off_and_an_early_caller_is_answered_after_it() -> None:
    t = Timeline.start(greet=False)
    greeting = t.of_type(ev.Synthesize)
    per_frame = t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))  # caller talks at once
    assert not any(isinstance(a, (ev.SendClear, ev.CancelReply)) for _, actions in per_frame for a in actions)
    utterance = t.of_type(ev.Transcribe)[0]
    actions = t.apply(ev.TranscriptReady(utterance.utterance_id, "I need a refill", t.now))
    assert not any(isinstance(a, ev.GenerateReply) for a in actions), "the greeting is still being synthesized"
    for action in greeting:  # the greeting's audio arrives: it plays, then the caller gets an answer
        actions = t.apply(ev.SpeechReady(action.reply_id, action.segment, silence(0.3), t.now))
    generate = [a for a in actions if isinstance(a, ev.GenerateReply)]
    assert len(generate) == 1 and generate[0].messages[-1]["content"] == "I need a refill"


def test_barge_in_stops_playback_within_one_frame_and_sends_clear() -> None:
    t = Timeline.start()
    rid = _agent_replying(t, 5.0)
    t.wait(0.5)
    sent_before = len(t.of_type(ev.SendAudio))
    assert sent_before > 0
    per_frame = t.speak(recording(SPEECH)[: 8000])  # the caller talks over the reply
    onset = next(i for i, actions in per_frame if any(isinstance(a, ev.SendClear) for a in actions))
    # Nothing after the onset frame carries agent audio: playback stopped at once.
    after = [a for i, actions in per_frame if i > onset for a in actions if isinstance(a, ev.SendAudio)]
    assert after == []
    onset_actions = per_frame[onset][1]
    clear_index = next(i for i, a in enumerate(onset_actions) if isinstance(a, ev.SendClear))
    assert not any(isinstance(a, ev.SendAudio) for a in onset_actions[clear_index:])
    assert onset * FRAME_S < 0.5, "speech onset detected within the start_speech window"
    assert t.session.barge_ins == 1
    assert rid


REPLY = "Your appointment is on Tuesday at ten in the morning with doctor Lee."


def _agent_turn(t: Timeline, rid: str) -> str:
    return next(turn.text for turn in t.session.transcript if turn.utterance_id == rid)


def test_a_reply_cut_by_a_barge_in_is_in_the_transcript_as_far_as_it_was_heard() -> None:
    """The reply was recorded whole when it was queued; the caller heard ~1 s of its 5 s."""
    t = Timeline.start()
    rid = _agent_replying(t, 5.0)
    assert _agent_turn(t, rid) == REPLY  # all of it queued: the next turn's history needs it now
    t.wait(0.5)
    per_frame = t.speak(recording(SPEECH)[:8000])
    onset = next(i for i, actions in per_frame if any(isinstance(a, ev.SendClear) for a in actions))
    heard_s = 0.5 + (onset + 1) * FRAME_S
    cut = _agent_turn(t, rid)
    assert cut.endswith(" [interrupted]")
    words = cut.removesuffix(" [interrupted]").split()
    full = REPLY.split()
    assert words == full[: len(words)], "the heard part is the reply's start, word for word"
    assert len(words) <= len(full) * heard_s / 5.0 + 1, (cut, heard_s)
    resent = [a for _, actions in per_frame for a in actions if isinstance(a, ev.SendTranscript) and a.utterance_id == rid]
    assert [a.text for a in resent] == [cut], "the client is sent the cut turn under the same id"
    # The model's next turn sees what the caller heard, not what it wrote.
    assert all(REPLY not in message["content"] for message in t.session.dialogue.chat_messages())


def test_a_reply_heard_to_the_end_is_not_marked_when_the_caller_speaks_after_it() -> None:
    t = Timeline.start()
    rid = _agent_replying(t, 1.0)
    t.wait(1.5)
    t.speak(recording(SPEECH)[:8000])
    assert _agent_turn(t, rid) == REPLY


def test_a_hang_up_during_a_reply_keeps_only_what_was_heard() -> None:
    t = Timeline.start()
    rid = _agent_replying(t, 5.0)
    t.wait(2.5)
    t.apply(ev.HangupRequested("caller_hangup", t.now))
    cut = _agent_turn(t, rid)
    assert cut.endswith(" [interrupted]")
    heard = len(cut.removesuffix(" [interrupted]").split())
    assert 3 <= heard <= 8, cut  # about half of 13 words in 2.5 s of 5 s


def test_reordered_and_missing_frames_still_make_one_utterance() -> None:
    t = Timeline.start()
    frames = t.frames(np.concatenate([recording(SPEECH), silence(1.2)]))
    order = list(range(len(frames)))
    for i in range(10, len(order) - 1, 7):  # swap neighbours: out-of-order delivery
        order[i], order[i + 1] = order[i + 1], order[i]
    missing = {40, 41, 90}  # lost in transit
    for seq in order:
        t.now += FRAME_S
        if seq not in missing:
            t.apply(ev.AudioReceived(seq, frames[seq], t.now))
    t.wait(0.3)
    stats = t.session.jitter_stats
    assert stats.reordered > 0
    assert stats.concealed == len(missing)
    utterances = t.of_type(ev.Transcribe)
    assert len(utterances) == 1
    assert 2.0 * 8000 <= len(utterances[0].samples) <= 3.3 * 8000


def test_hangup_mid_utterance_transcribes_partial_and_writes_note() -> None:
    t = Timeline.start()
    t.speak(recording(SPEECH)[: int(1.6 * 8000)])  # cut off mid-sentence
    assert not t.of_type(ev.Transcribe)
    actions = t.apply(ev.HangupRequested("caller_hangup", t.now))
    partial = [a for a in actions if isinstance(a, ev.Transcribe)]
    assert len(partial) == 1 and partial[0].partial
    assert not t.of_type(ev.WriteRecords), "the note waits for the last transcription"
    actions = t.apply(ev.TranscriptReady(partial[0].utterance_id, "She had your dark suit", t.now))
    write = [a for a in actions if isinstance(a, ev.WriteRecords)]
    assert write and "partial_utterance_at_hangup" in write[0].flags
    assert [turn.text for turn in t.session.transcript if turn.role == "caller"] == ["She had your dark suit"]
    assert t.apply(ev.NoteStored(t.now)) == [ev.EndCall("completed")]


def test_reply_streams_sentences_and_plays_them_in_order() -> None:
    t = Timeline.start()
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    utterance = t.of_type(ev.Transcribe)[0]
    actions = t.apply(ev.TranscriptReady(utterance.utterance_id, "I need to refill my lisinopril.", t.now))
    generate = [a for a in actions if isinstance(a, ev.GenerateReply)]
    assert len(generate) == 1
    assert generate[0].messages[0]["role"] == "system"
    assert generate[0].messages[-1] == {"role": "user", "content": "I need to refill my lisinopril."}
    rid = generate[0].reply_id
    first = t.apply(ev.ReplyTextDelta(rid, "Sure, I can help with that. Which", t.now))
    assert [a.text for a in first if isinstance(a, ev.Synthesize)] == ["Sure, I can help with that."]
    t.apply(ev.ReplyTextDelta(rid, " pharmacy do you use?", t.now))
    done = t.apply(ev.ReplyTextDone(rid, t.now))
    assert [a.text for a in done if isinstance(a, ev.Synthesize)] == ["Which pharmacy do you use?"]
    # Segment 1 arrives before segment 0: nothing plays until segment 0 is there.
    two = np.full(1600, 2000, dtype=np.int16)
    one = np.full(1600, 1000, dtype=np.int16)
    before = len(t.of_type(ev.SendAudio))
    t.apply(ev.SpeechReady(rid, 1, two, t.now))
    assert len(t.of_type(ev.SendAudio)) == before
    t.apply(ev.SpeechReady(rid, 0, one, t.now))
    t.wait(1.0)
    frames = [f for a in t.of_type(ev.SendAudio)[before:] for f in a.frames]
    assert frames[0][0] == 1000 and frames[-1][0] == 2000
    agent = [turn.text for turn in t.session.transcript if turn.role == "agent"]
    assert agent[-1] == "Sure, I can help with that. Which pharmacy do you use?"


@pytest.mark.parametrize("text", ["I have crushing chest pain", "my husband can't breathe"])
def test_red_flags_get_the_emergency_script_not_the_llm(text: str) -> None:
    t = Timeline.start()
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    utterance = t.of_type(ev.Transcribe)[0]
    actions = t.apply(ev.TranscriptReady(utterance.utterance_id, text, t.now))
    assert not any(isinstance(a, ev.GenerateReply) for a in actions)
    spoken = " ".join(a.text for a in actions if isinstance(a, ev.Synthesize))
    assert spoken == safety_settings().emergency_message
    assert "emergency_detected" in t.session.dialogue.flags
    assert any(isinstance(a, ev.SendTransfer) and a.kind == "emergency" for a in actions)
    # The emergency message is not interruptible by caller speech.
    for action in [a for a in actions if isinstance(a, ev.Synthesize)]:
        t.apply(ev.SpeechReady(action.reply_id, action.segment, np.full(16000, 500, dtype=np.int16), t.now))
    per_frame = t.speak(recording(SPEECH)[:8000])
    assert not any(isinstance(a, ev.SendClear) for _, actions in per_frame for a in actions)


def test_failed_reply_falls_back_to_a_spoken_apology() -> None:
    t = Timeline.start()
    t.speak(np.concatenate([recording(SPEECH), silence(1.0)]))
    utterance = t.of_type(ev.Transcribe)[0]
    rid = next(a for a in t.apply(ev.TranscriptReady(utterance.utterance_id, "hello", t.now)) if isinstance(a, ev.GenerateReply)).reply_id
    actions = t.apply(ev.ReplyFailed(rid, "TimeoutError", t.now))
    assert any(isinstance(a, ev.Synthesize) and "trouble" in a.text for a in actions)
    assert "reply_failed" in t.session.dialogue.flags


def test_idle_hangup_at_max_call_length() -> None:
    t = Timeline.start(max_call_s=1.0)
    t.wait(1.2)
    assert t.session.phase in (Phase.WRITING, Phase.ENDING)
    assert t.of_type(ev.WriteRecords)
