"""Gateway websocket protocol: every error path and round trips through the serialisers."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from websockets.exceptions import ProtocolError as WebSocketProtocolError
from websockets.frames import Close, Frame, Opcode

from iasovoice.audio.pcm import array_to_pcm16, mulaw_encode
from iasovoice.errors import ProtocolError
from iasovoice.protocol import (
    MAX_SHOWN_CHARS,
    AudioMessage,
    DtmfMessage,
    StopMessage,
    _shown,
    audio_message,
    call_ended_message,
    clear_message,
    close_reason,
    error_message,
    note_ready_message,
    parse_client_message,
    parse_server_message,
    transcript_message,
)

MAX = 64_000
SAMPLES = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)


def audio_json(data: str | None = None, **extra: object) -> str:
    msg: dict[str, object] = {"type": "audio"}
    msg["data"] = base64.b64encode(array_to_pcm16(SAMPLES)).decode() if data is None else data
    msg.update(extra)
    return json.dumps(msg)


def parse(raw: str | bytes, max_audio_bytes: int = MAX):
    return parse_client_message(raw, max_audio_bytes=max_audio_bytes)


def perr(raw: str | bytes, max_audio_bytes: int = MAX) -> ProtocolError:
    with pytest.raises(ProtocolError) as exc:
        parse(raw, max_audio_bytes)
    return exc.value


# --- valid inbound ---------------------------------------------------------------------------------------


def test_audio_defaults_to_8k_pcm_without_metadata() -> None:
    m = parse(audio_json())
    assert isinstance(m, AudioMessage)
    assert (m.sample_rate, m.encoding, m.seq) == (8000, "pcm", None)
    assert m.samples.dtype == np.int16 and m.samples.tolist() == SAMPLES.tolist()


def test_audio_with_metadata_and_seq() -> None:
    m = parse(audio_json(metadata={"sampleRate": 16000, "encoding": "pcm"}, seq=42))
    assert (m.sample_rate, m.encoding, m.seq) == (16000, "pcm", 42)
    assert parse(audio_json(metadata={}, seq=None)).sample_rate == 8000


@pytest.mark.parametrize("enc", ["mulaw", "ulaw", "MULAW"])
def test_mulaw_audio_decoded_to_int16(enc: str) -> None:
    x = np.array([0, 1000, -1000, 8000, -30000], dtype=np.int16)
    data = base64.b64encode(mulaw_encode(x)).decode()
    m = parse(audio_json(data, metadata={"sampleRate": 8000, "encoding": enc}))
    assert m.encoding == "mulaw" and m.samples.dtype == np.int16 and len(m.samples) == 5
    assert np.all(np.abs(m.samples.astype(int) - x) <= np.abs(x.astype(int)) // 16 + 8)


def test_odd_byte_count_is_fine_for_mulaw() -> None:
    m = parse(audio_json(base64.b64encode(b"\xff\x00\x80").decode(), metadata={"encoding": "mulaw"}))
    assert m.samples.tolist() == [0, -32124, 32124]


def test_stop_and_dtmf() -> None:
    assert parse('{"type":"stop"}') == StopMessage()
    assert parse(json.dumps({"type": "dtmf", "digits": "0123456789*#ABCD"})) == DtmfMessage(
        "0123456789*#ABCD"
    )
    assert parse(json.dumps({"type": "dtmf", "digits": "1a"})) == DtmfMessage("1A")


# --- error paths -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 48000, 0, "8000", None, True, [8000]])
def test_unsupported_rate_is_fatal_1003_and_names_rates(rate: object) -> None:
    e = perr(audio_json(metadata={"sampleRate": rate}))
    assert e.fatal and e.close_code == 1003
    assert repr(rate) in str(e) and "8000" in str(e) and "16000" in str(e)


def test_unknown_encoding_is_fatal() -> None:
    e = perr(audio_json(metadata={"encoding": "opus"}))
    assert e.fatal and e.close_code == 1003 and "opus" in str(e) and "pcm" in str(e)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"audio"', "JSON object"),
        ("{}", 'no "type"'),
        ('{"type": "hello"}', "unknown message type 'hello'"),
        ('{"type": 5}', "unknown message type 5"),
        ('{"type": "audio"}', "non-empty base64"),
        ('{"type": "audio", "data": ""}', "non-empty base64"),
        ('{"type": "audio", "data": 123}', "non-empty base64"),
        ('{"type": "audio", "data": "!!!!"}', "not valid base64"),
        ('{"type": "audio", "data": "AAA"}', "not valid base64"),
        ('{"type": "audio", "data": "AAE="}', None),  # valid: 2 bytes
        ('{"type": "audio", "data": "AAEC"}', "even byte count"),
        ('{"type": "audio", "data": "AAE=", "metadata": "8000"}', '"metadata" must be an object'),
        ('{"type": "audio", "data": "AAE=", "seq": "1"}', '"seq" must be an integer'),
        ('{"type": "audio", "data": "AAE=", "seq": 1.5}', '"seq" must be an integer'),
        ('{"type": "audio", "data": "AAE=", "seq": true}', '"seq" must be an integer'),
        ('{"type": "dtmf"}', "non-empty string"),
        ('{"type": "dtmf", "digits": ""}', "non-empty string"),
        ('{"type": "dtmf", "digits": "12x"}', "may only contain"),
        ('{"type": "dtmf", "digits": "' + "1" * 65 + '"}', "longer than 64"),
    ],
)
def test_non_fatal_errors_have_clear_messages(raw: str, needle: str | None) -> None:
    if needle is None:
        assert isinstance(parse(raw), AudioMessage)
        return
    e = perr(raw)
    assert needle in str(e)
    assert not e.fatal


def test_binary_frames_rejected() -> None:
    e = perr(b'{"type":"stop"}')
    assert "binary" in str(e) and not e.fatal and e.close_code == 1003


def test_audio_over_limit_rejected_before_and_after_decoding() -> None:
    big = base64.b64encode(b"\x00" * 1000).decode()
    e = perr(audio_json(big), max_audio_bytes=100)
    assert e.close_code == 1009 and not e.fatal and "100 bytes" in str(e)
    # Right at the limit passes; one sample more fails (exact decoded-size check).
    assert len(parse(audio_json(base64.b64encode(b"\x00" * 100).decode()), 100).samples) == 50
    e = perr(audio_json(base64.b64encode(b"\x00" * 102).decode()), 100)
    assert e.close_code == 1009


@pytest.mark.parametrize(
    "raw",
    [
        "9" * 4301,
        '{"type": "audio", "data": "AAAA", "seq": ' + "1" * 5000 + "}",
        '{"type": "audio", "data": "AAAA", "metadata": {"sampleRate": ' + "8" * 4400 + "}}",
    ],
    ids=["bare", "seq", "sampleRate"],
)
def test_a_number_too_long_for_python_is_not_json_not_a_crash(raw: str) -> None:
    """Found by the gateway fuzz: json.loads raises a plain ValueError for ints over 4300 digits, which
    escaped parse_client_message (1011 and a traceback at the gateway instead of an error message)."""
    e = perr(raw)
    assert (e.kind, e.fatal) == ("not_json", False) and "too long" in str(e)


def test_json_nested_too_deeply_is_not_json() -> None:
    e = perr("[" * 100_000 + "]" * 100_000)
    assert (e.kind, e.fatal) == ("not_json", False) and "nested too deeply" in str(e)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"type": "x" * 100_000}),
        audio_json(seq="9" * 100_000),
        audio_json(metadata={"sampleRate": "é" * 100_000}),
        audio_json(metadata={"encoding": ["opus"] * 100_000}),
        json.dumps({"type": "dtmf", "digits": "1x"}).replace("1x", "x" * 60),
    ],
    ids=["type", "seq", "sampleRate", "encoding", "dtmf"],
)
def test_errors_quote_a_bounded_part_of_the_clients_value(raw: str) -> None:
    """Found while fuzzing the gateway: errors quoted the client's whole value, so a message up to
    server.max_message_bytes came back as an error that size, and went into the log, every time."""
    e = perr(raw)
    assert len(str(e)) < MAX_SHOWN_CHARS + 120
    assert "…" in str(e)


def test_a_value_too_deep_to_repr_is_quoted_by_its_type() -> None:
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert _shown(deep) == "<a deeply nested list>"


@pytest.mark.parametrize(
    "text", ["é" * 120, "\U0001f600" * 60, "a" * 200, "ok"], ids=["e-acute", "emoji", "ascii", "short"]
)
def test_close_reason_fits_a_close_frame(text: str) -> None:
    """Found while fuzzing the gateway: a fatal error's reason cut to 120 characters was up to 480 bytes
    (an "é" or emoji sampleRate), over RFC 6455's 123, and websockets raised instead of closing."""
    reason = close_reason(text)
    assert len(reason.encode()) <= 123 and text.startswith(reason)
    _close_frame(reason).check()  # what websockets does before it sends one


def test_a_reason_cut_by_characters_does_not_fit() -> None:
    """Why close_reason cuts bytes: the old `[:120]` cut of a non-ASCII reason is refused by websockets."""
    with pytest.raises(WebSocketProtocolError, match="control frame too long"):
        _close_frame(("é" * 200)[:120]).check()


def _close_frame(reason: str) -> Frame:
    return Frame(Opcode.CLOSE, Close(1003, reason).serialize())


# --- outbound --------------------------------------------------------------------------------------------


def test_audio_message_exact_format_and_round_trip() -> None:
    pcm = array_to_pcm16(SAMPLES)
    s = audio_message(pcm)
    assert json.loads(s) == {"type": "audio", "data": base64.b64encode(pcm).decode()}
    assert s == '{"type":"audio","data":"' + base64.b64encode(pcm).decode() + '"}'
    assert base64.b64decode(parse_server_message(s)["data"]) == pcm
    # The same JSON is a valid client audio message (the CLI echoes it): 8 kHz pcm by default.
    assert parse(s).samples.tolist() == SAMPLES.tolist()


def test_other_server_messages_round_trip() -> None:
    assert parse_server_message(clear_message()) == {"type": "clear"}
    assert parse_server_message(transcript_message("caller", "héllo", "u1")) == {
        "type": "transcript",
        "role": "caller",
        "text": "héllo",
        "utterance_id": "u1",
        "final": True,
    }
    assert parse_server_message(transcript_message("agent", "hi", "u2", final=False))["final"] is False
    assert parse_server_message(note_ready_message("c1", "https://x/notes/c1")) == {
        "type": "note_ready",
        "call_id": "c1",
        "url": "https://x/notes/c1",
    }
    assert parse_server_message(error_message("bad_audio", "odd")) == {
        "type": "error",
        "code": "bad_audio",
        "message": "odd",
    }
    assert parse_server_message(call_ended_message("hangup")) == {"type": "call_ended", "reason": "hangup"}


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        "{}",
        '{"type":"bogus"}',
        '{"type":"audio"}',
        '{"type":"error","code":"x"}',
        '{"type":"transcript","role":"a","text":"b","utterance_id":"c","final":"yes"}',
    ],
)
def test_parse_server_message_rejects_invalid(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_server_message(raw)
