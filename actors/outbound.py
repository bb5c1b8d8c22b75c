"""What a call actor hands the gateway on each exchange: agent audio and events, in send order.

Audio is raw 16-bit PCM at the caller's rate; only the gateway turns it into the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutboundKind = Literal["audio", "clear", "transcript", "note_ready", "ended", "transfer"]


@dataclass(frozen=True)
class OutboundItem:
    kind: OutboundKind
    audio: bytes = b""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExchangeResult:
    items: list[OutboundItem]
    next_seq: int
    ended: str | None = None


@dataclass(frozen=True)
class Binding:
    """What `CallActor.bind` hands the gateway: where the call's audio goes next.

    `stream` is the (host, port) of the actor's direct stream and `token` the secret its hello must
    carry (`server.transport: stream`); both are None when exchanges go as Ray actor calls.
    """

    next_seq: int
    stream: tuple[str, int] | None = None
    token: bytes | None = None
