"""The gateway's websocket protocol: pure parsing and serialising, shared by the gateway, CLI and load tester.

Client -> gateway (JSON text frames):
  {"type": "audio", "data": "<base64>", "metadata": {"sampleRate": 8000, "encoding": "pcm"}, "seq": 0}
  {"type": "stop"}
  {"type": "dtmf", "digits": "12#"}
Gateway -> client: audio, clear, transcript, note_ready, error, call_ended (see the serialisers below).

Every malformed message raises ProtocolError with a message a client developer can act on; only errors that
would repeat on every message of the call (an unsupported format) are fatal.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from iasovoice.audio.pcm import SUPPORTED_RATES, mulaw_decode, pcm16_to_array
from iasovoice.errors import ProtocolError

DEFAULT_SAMPLE_RATE = 8000
ENCODINGS: tuple[str, ...] = ("pcm", "mulaw", "ulaw")
CLIENT_TYPES: tuple[str, ...] = ("audio", "stop", "dtmf")
SERVER_TYPES: tuple[str, ...] = ("audio", "clear", "transcript", "note_ready", "transfer", "error", "call_ended")
MAX_DTMF_DIGITS = 64
_DTMF_RE = re.compile(r"[0-9*#A-D]+")
# How much of a client's own value an error quotes back: enough to recognise it, never a copy of a
# megabyte message (the error goes back over the socket and into the gateway's log, once per message).
MAX_SHOWN_CHARS = 60
# RFC 6455 caps a close frame's reason at 123 bytes of UTF-8; websockets raises on a longer one.
MAX_CLOSE_REASON_BYTES = 123

# RFC 6455 close codes.
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_TOO_BIG = 1009
# The fixed `ProtocolError.kind` labels parse_client_message raises (the gateway's bad-message metric).
BAD_MESSAGE_KINDS: tuple[str, ...] = (
    "binary_frame", "not_json", "not_object", "no_type", "unknown_type", "bad_audio", "bad_base64",
    "too_large", "bad_metadata", "unsupported_rate", "unsupported_encoding", "bad_dtmf",
)


@dataclass(frozen=True)
class AudioMessage:
    samples: np.ndarray  # int16 mono
    sample_rate: int
    encoding: str
    seq: int | None


@dataclass(frozen=True)
class StopMessage:
    pass


@dataclass(frozen=True)
class DtmfMessage:
    digits: str


ClientMessage = AudioMessage | StopMessage | DtmfMessage


def parse_client_message(raw: str | bytes, *, max_audio_bytes: int) -> ClientMessage:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raise ProtocolError(
            "binary websocket frames are not supported; send JSON text frames with base64 audio",
            close_code=CLOSE_UNSUPPORTED,
            kind="binary_frame",
        )
    try:
        msg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}", kind="not_json") from None
    except RecursionError:
        raise ProtocolError("message is not valid JSON: nested too deeply", kind="not_json") from None
    except ValueError:
        # Python refuses integers over 4300 digits (int_max_str_digits) with a plain ValueError.
        raise ProtocolError("message is not valid JSON: a number in it is too long", kind="not_json") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"message must be a JSON object, got {type(msg).__name__}", kind="not_object")
    kind = msg.get("type")
    if kind == "audio":
        return _parse_audio(msg, max_audio_bytes)
    if kind == "stop":
        return StopMessage()
    if kind == "dtmf":
        return _parse_dtmf(msg)
    if kind is None:
        raise ProtocolError(f'message has no "type"; expected one of {", ".join(CLIENT_TYPES)}', kind="no_type")
    raise ProtocolError(
        f"unknown message type {_shown(kind)}; expected one of {', '.join(CLIENT_TYPES)}", kind="unknown_type"
    )


def _parse_audio(msg: dict[str, Any], max_audio_bytes: int) -> AudioMessage:
    rate, encoding = _parse_metadata(msg.get("metadata"))
    seq = msg.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise ProtocolError(f'audio "seq" must be an integer, got {_shown(seq)}', kind="bad_audio")
    data = msg.get("data")
    if not isinstance(data, str) or not data:
        raise ProtocolError('audio message needs a non-empty base64 string in "data"', kind="bad_audio")
    # Reject before decoding so an oversized payload costs nothing (base64 is 4 chars per 3 bytes).
    if (len(data) // 4) * 3 > max_audio_bytes + 2:
        raise ProtocolError(
            f"audio payload exceeds {max_audio_bytes} bytes", close_code=CLOSE_TOO_BIG, kind="too_large"
        )
    try:
        payload = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f'audio "data" is not valid base64: {exc}', kind="bad_base64") from None
    if len(payload) > max_audio_bytes:
        raise ProtocolError(
            f"audio payload of {len(payload)} bytes exceeds {max_audio_bytes} bytes", close_code=CLOSE_TOO_BIG,
            kind="too_large",
        )
    if encoding == "pcm":
        if len(payload) % 2:
            raise ProtocolError(
                f"16-bit PCM audio needs an even byte count, got {len(payload)} bytes", kind="bad_audio"
            )
        samples = pcm16_to_array(payload)
    else:
        samples = mulaw_decode(payload)
    return AudioMessage(samples=samples, sample_rate=rate, encoding=encoding, seq=seq)


def _parse_metadata(meta: Any) -> tuple[int, str]:
    if meta is None:
        return DEFAULT_SAMPLE_RATE, "pcm"
    if not isinstance(meta, dict):
        raise ProtocolError(f'audio "metadata" must be an object, got {type(meta).__name__}', kind="bad_metadata")
    rate = meta.get("sampleRate", DEFAULT_SAMPLE_RATE)
    if isinstance(rate, bool) or rate not in SUPPORTED_RATES:
        accepted = " or ".join(str(r) for r in SUPPORTED_RATES)
        raise ProtocolError(
            f"unsupported sampleRate {_shown(rate)} Hz; accepted rates are {accepted} Hz",
            close_code=CLOSE_UNSUPPORTED,
            fatal=True,
            kind="unsupported_rate",
        )
    encoding = meta.get("encoding", "pcm")
    enc = encoding.lower() if isinstance(encoding, str) else encoding
    if enc not in ENCODINGS:
        raise ProtocolError(
            f"unsupported audio encoding {_shown(encoding)}; accepted encodings are {', '.join(ENCODINGS)}",
            close_code=CLOSE_UNSUPPORTED,
            fatal=True,
            kind="unsupported_encoding",
        )
    return int(rate), "mulaw" if enc == "ulaw" else enc


def _parse_dtmf(msg: dict[str, Any]) -> DtmfMessage:
    digits = msg.get("digits")
    if not isinstance(digits, str) or not digits:
        raise ProtocolError('dtmf message needs a non-empty string in "digits"', kind="bad_dtmf")
    if len(digits) > MAX_DTMF_DIGITS:
        raise ProtocolError(f'dtmf "digits" is longer than {MAX_DTMF_DIGITS} characters', kind="bad_dtmf")
    norm = digits.upper()
    if not _DTMF_RE.fullmatch(norm):
        raise ProtocolError(f'dtmf "digits" {_shown(digits)} may only contain 0-9 * # A B C D', kind="bad_dtmf")
    return DtmfMessage(norm)


def _shown(value: Any) -> str:
    """A client's value as an error quotes it: its repr, cut to MAX_SHOWN_CHARS characters."""
    try:
        text = repr(value)
    except RecursionError:  # JSON nested close to the parser's own limit
        return f"<a deeply nested {type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS - 1]}…"


def close_reason(text: str) -> str:
    """`text` cut to fit a websocket close frame (123 bytes of UTF-8), never inside a character.

    Error texts quote client values, which may be any Unicode: cutting by characters can leave a
    reason too long for the frame, and then websockets raises instead of closing.
    """
    data = text.encode()
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def audio_message(pcm: bytes) -> str:
    return _dumps({"type": "audio", "data": base64.b64encode(pcm).decode("ascii")})


def clear_message() -> str:
    """Tells the client to drop queued playback (barge-in)."""
    return _dumps({"type": "clear"})


def transcript_message(role: str, text: str, utterance_id: str, final: bool = True) -> str:
    return _dumps(
        {"type": "transcript", "role": role, "text": text, "utterance_id": utterance_id, "final": final}
    )


def transfer_message(kind: str, target: str) -> str:
    """Hand the call on (emergency, crisis line, staff); always sent, whatever `?events=` asked for."""
    return _dumps({"type": "transfer", "reason": kind, "target": target})


def note_ready_message(call_id: str, url: str) -> str:
    return _dumps({"type": "note_ready", "call_id": call_id, "url": url})


def error_message(code: str, message: str) -> str:
    return _dumps({"type": "error", "code": code, "message": message})


def call_ended_message(reason: str) -> str:
    return _dumps({"type": "call_ended", "reason": reason})


_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "audio": {"data": str},
    "clear": {},
    "transcript": {"role": str, "text": str, "utterance_id": str, "final": bool},
    "note_ready": {"call_id": str, "url": str},
    "transfer": {"reason": str, "target": str},
    "error": {"code": str, "message": str},
    "call_ended": {"reason": str},
}


def parse_server_message(raw: str) -> dict[str, Any]:
    """Client-side check of a gateway message, so a client fails loudly on a protocol mismatch."""
    try:
        msg = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(f"server message is not valid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"server message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if kind not in _REQUIRED:
        raise ProtocolError(
            f"unknown server message type {kind!r}; expected one of {', '.join(SERVER_TYPES)}"
        )
    for key, typ in _REQUIRED[kind].items():
        if not isinstance(msg.get(key), typ):
            raise ProtocolError(f"server {kind!r} message needs {key!r} of type {typ.__name__}")
    return msg
