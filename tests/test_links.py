"""The gateway ↔ call-actor transport: a real socket pair, the real codec, a stand-in for the actor.

The actor side here is a plain object with the call actor's `exchange`/`stream_lost` methods (the
CallActor hands itself to the StreamServer the same way), so the test runs without Ray in ~0.1 s.
"""

from __future__ import annotations

import asyncio

import pytest

from actors import stream_codec as codec
from actors.outbound import ExchangeResult, OutboundItem
from actors.stream_server import StreamServer
from gateway.links import LinkError, StreamLink
from tests.stream_echo import EchoActor


def test_codec_round_trip() -> None:
    result = ExchangeResult([OutboundItem("audio", b"\x01\x02"), OutboundItem("clear"),
                             OutboundItem("ended", data={"reason": "x"})], 7, None)
    payload = codec.encode_result(result)[4:]
    assert codec.decode_result(payload) == result
    assert codec.decode_exchange(codec.encode_exchange(-1, b"ab")[4:]) == (-1, b"ab")
    with pytest.raises(codec.StreamProtocolError):
        codec.decode_result(b"R\x00")


async def _server() -> tuple[EchoActor, StreamServer]:
    actor = EchoActor()
    server = StreamServer(actor)
    await server.start()
    return actor, server


def test_exchange_round_trip_and_bye_is_not_a_loss() -> None:
    async def scenario() -> None:
        actor, server = await _server()
        link = await StreamLink.connect(server.address, server.token)
        pcm = bytes(range(256)) * 5  # two 20 ms frames at 8 kHz
        result = await link.exchange(3, pcm[:640])
        assert result.next_seq == 5 and result.ended is None
        assert result.items[0] == OutboundItem("audio", pcm[:640])
        assert result.items[1].data["text"] == "héllo"
        empty = await link.exchange(5, b"")
        assert [i.kind for i in empty.items] == ["transcript"]
        assert (await link.exchange(100, b"")).ended == "completed"
        await link.close()
        await asyncio.sleep(0.05)
        assert not actor.lost.is_set()
        assert actor.exchanges[0] == (3, pcm[:640])
        await server.close()

    asyncio.run(scenario())


def test_broken_stream_hangs_the_call_up() -> None:
    async def scenario() -> None:
        actor, server = await _server()
        link = await StreamLink.connect(server.address, server.token)
        await link.exchange(0, b"")
        link._writer.transport.abort()  # the gateway process dies: no bye
        await asyncio.wait_for(actor.lost.wait(), 2)
        with pytest.raises(LinkError):
            await link.exchange(1, b"")
        await server.close()

    asyncio.run(scenario())


def test_actor_gone_is_a_link_error_for_the_gateway() -> None:
    async def scenario() -> None:
        _, server = await _server()
        link = await StreamLink.connect(server.address, server.token)
        await server.close()  # the actor process exits: its sockets close
        with pytest.raises(LinkError):
            for seq in range(3):
                await link.exchange(seq, b"")

    asyncio.run(scenario())


def test_wrong_token_is_refused_and_reports_no_loss() -> None:
    async def scenario() -> None:
        actor, server = await _server()
        link = await StreamLink.connect(server.address, b"not-the-token-00")
        with pytest.raises(LinkError):
            await link.exchange(0, b"")
        assert not actor.lost.is_set()
        assert actor.exchanges == []
        await server.close()

    asyncio.run(scenario())
