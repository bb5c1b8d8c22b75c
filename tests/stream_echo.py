"""The actor side of a call stream without Ray: an object with the call actor's `exchange`/`stream_lost`.

It echoes caller audio, adds one transcript event, and ends the call once frame 100 is reached, so the
stream tests (tests/test_links.py, tests/test_stream_tls.py) see every kind of answer.
"""

from __future__ import annotations

import asyncio

from actors.outbound import ExchangeResult, OutboundItem


class EchoActor:
    def __init__(self) -> None:
        self.lost = asyncio.Event()
        self.exchanges: list[tuple[int, bytes]] = []

    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        self.exchanges.append((first_seq, pcm))
        items = [OutboundItem("audio", pcm)] if pcm else []
        items.append(OutboundItem("transcript", data={"role": "agent", "text": "héllo", "utterance_id": "u1"}))
        return ExchangeResult(items, first_seq + len(pcm) // 320, "completed" if first_seq >= 100 else None)

    def stream_lost(self) -> None:
        self.lost.set()
