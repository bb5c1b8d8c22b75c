"""Wire format of the direct gateway ↔ call-actor stream (`server.transport: stream`).

Every message is a 4-byte big-endian length and a payload whose first byte says what it is:
  gateway → actor  b"H" + token               hello: proves the gateway got the address from `bind()`
                   b"X" + first_seq (i64) + pcm  one exchange: contiguous 20 ms frames from first_seq
                   b"B"                         bye: the gateway closes on purpose (no hang-up follows)
  actor → gateway  b"R" + an ExchangeResult     the answer to one exchange, in order
An ExchangeResult is next_seq (i64), the ended reason (u16 length + UTF-8, 0xFFFF for none), the item
count (u32) and per item its kind (u8), audio (u32 length + bytes) and data (u32 length + JSON). A
fixed binary layout rather than pickle: the listener is a socket, and nothing read from a socket may
be able to run code.
"""

from __future__ import annotations

import asyncio
import json
import struct

from actors.outbound import ExchangeResult, OutboundItem, OutboundKind

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HELLO, EXCHANGE, BYE, RESULT = b"H", b"X", b"B", b"R"
_LEN = struct.Struct(">I")
_SEQ = struct.Struct(">q")
_HEAD = struct.Struct(">qH")
_KINDS: tuple[OutboundKind, ...] = ("audio", "clear", "transcript", "note_ready", "ended", "transfer")
_KIND_CODE = {kind: index for index, kind in enumerate(_KINDS)}
_NO_REASON = 0xFFFF


class StreamProtocolError(ConnectionError):
    """The peer sent something that is not this protocol; the stream is dropped."""


def frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One whole payload; IncompleteReadError at EOF, StreamProtocolError on a bad length."""
    (length,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if length == 0 or length > MAX_MESSAGE_BYTES:
        raise StreamProtocolError(f"bad stream message length {length}")
    return await reader.readexactly(length)


def encode_exchange(first_seq: int, pcm: bytes) -> bytes:
    return frame(EXCHANGE + _SEQ.pack(first_seq) + pcm)


def decode_exchange(payload: bytes) -> tuple[int, bytes]:
    if len(payload) < 1 + _SEQ.size:
        raise StreamProtocolError("exchange message too short")
    (first_seq,) = _SEQ.unpack_from(payload, 1)
    return first_seq, payload[1 + _SEQ.size:]


def encode_result(result: ExchangeResult) -> bytes:
    reason = result.ended.encode() if result.ended is not None else b""
    parts = [RESULT, _HEAD.pack(result.next_seq, _NO_REASON if result.ended is None else len(reason)), reason]
    parts.append(_LEN.pack(len(result.items)))
    for item in result.items:
        data = json.dumps(item.data, separators=(",", ":")).encode() if item.data else b""
        parts += [bytes((_KIND_CODE[item.kind],)), _LEN.pack(len(item.audio)), item.audio, _LEN.pack(len(data)), data]
    return frame(b"".join(parts))


def decode_result(payload: bytes) -> ExchangeResult:
    try:
        if payload[:1] != RESULT:
            raise StreamProtocolError("expected a result message")
        pos = 1
        next_seq, reason_len = _HEAD.unpack_from(payload, pos)
        pos += _HEAD.size
        ended = None
        if reason_len != _NO_REASON:
            ended = payload[pos:pos + reason_len].decode()
            pos += reason_len
        (count,) = _LEN.unpack_from(payload, pos)
        pos += _LEN.size
        items: list[OutboundItem] = []
        for _ in range(count):
            kind = _KINDS[payload[pos]]
            (audio_len,) = _LEN.unpack_from(payload, pos + 1)
            pos += 1 + _LEN.size
            audio = payload[pos:pos + audio_len]
            pos += audio_len
            (data_len,) = _LEN.unpack_from(payload, pos)
            pos += _LEN.size
            data = json.loads(payload[pos:pos + data_len]) if data_len else {}
            pos += data_len
            items.append(OutboundItem(kind, audio, data))
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as error:
        raise StreamProtocolError(f"malformed result message: {error}") from None
    return ExchangeResult(items, next_seq, ended)
