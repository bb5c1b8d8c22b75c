"""Small pure pieces of the call path: sentence splitting, red-flag rules, routes and call tokens."""

from __future__ import annotations

import pytest

from gateway.auth import TokenRejected, TokenVerifier, call_token
from gateway.routes import route, valid_call_id
from iasovoice.config import AuthConfig
from iasovoice.core.dialogue import DialogueState
from iasovoice.core.sentences import SentenceSplitter
from iasovoice.notes.schema import TranscriptTurn


def test_sentences_stream_out_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Dr. Lee can see you") == []
    assert splitter.feed(" on Tuesday. What time") == ["Dr. Lee can see you on Tuesday."]
    assert splitter.feed(" works? Morning") == ["What time works?"]
    assert splitter.flush() == ["Morning"]
    assert splitter.flush() == []


def test_long_clause_is_cut_at_a_comma() -> None:
    splitter = SentenceSplitter(max_chars=40)
    out = splitter.feed("I can help with refills, appointments, and questions about your care plan and")
    assert out and out[0].endswith(",")


def test_dialogue_history_alternates_roles_and_carries_the_slots() -> None:
    state = DialogueState("system prompt", history_turns=4, llm_context="Recorded: {slots}")
    state.add_turn(TranscriptTurn(role="agent", text="Hello.", utterance_id="r1"))
    state.add_turn(TranscriptTurn(role="caller", text="Hi, I need", utterance_id="u1"))
    state.add_turn(TranscriptTurn(role="caller", text="a refill.", utterance_id="u2"))
    messages = state.chat_messages()
    assert [m["role"] for m in messages] == ["system", "assistant", "user"]
    assert messages[-1]["content"] == "Hi, I need a refill."
    assert messages[0]["content"] == "system prompt"
    state.update_slots({"medication": "metformin"})
    state.update_slots({"dose": "five hundred milligrams"})
    assert state.chat_messages()[0]["content"] == (
        'system prompt\n\nRecorded: {"dose": "five hundred milligrams", "medication": "metformin"}'
    )


def test_routes() -> None:
    assert route("/connect/abc-123?events=transcript&token=t").call_id == "abc-123"
    assert route("/connect/abc-123").query == {}
    note = route("/calls/abc/note?token=x")
    assert (note.kind, note.call_id, note.record, note.query) == ("record", "abc", "note", {"token": "x"})
    assert route("/calls/abc/transcript").record == "transcript"
    assert route("/healthz").kind == "health"
    assert route("/connect/").call_id == ""  # routed as a call, so the empty id gets the call-id 400
    assert route("/metrics").kind == "metrics" and route("/readyz").kind == "ready"
    assert route("/nope").kind == "unknown"
    assert valid_call_id("7c1b5a3e-2d4f-4e8a-9b6c-0123456789ab")
    assert not valid_call_id("..") and not valid_call_id("a/b") and not valid_call_id("x" * 129)


def test_call_tokens() -> None:
    secret = "s" * 32
    verifier = TokenVerifier(AuthConfig(mode="jwt-hs256", secret_env="S"), {"S": secret})
    token = call_token(secret.encode(), "call-1")
    assert verifier.verify("call-1", token)["sub"] == "call-1"
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    tampered = f"{head}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1:]}"
    for call_id, candidate, reason in [
        ("call-2", token, "wrong_call"),
        ("call-1", call_token(b"o" * 32, "call-1"), "bad_signature"),
        ("call-1", None, "missing"),
        ("call-1", tampered, "bad_signature"),
    ]:
        with pytest.raises(TokenRejected) as rejected:
            verifier.verify(call_id, candidate)
        assert rejected.value.reason == reason


def test_long_transcripts_keep_opening_and_end_for_the_note() -> None:
    from iasovoice.notes.soap import MAX_TRANSCRIPT_CHARS, format_transcript

    turns = [TranscriptTurn(role="caller", text=f"sentence number {i} about my knee", utterance_id=f"u{i}") for i in range(2000)]
    text = format_transcript(turns)
    assert len(text) <= MAX_TRANSCRIPT_CHARS + 2
    assert "sentence number 0 " in text and "sentence number 1999 " in text and "omitted" in text
