"""Admission control and the cold-start claim, on a real server (its own: a small, special config).

The server runs the echo-test mode (`call.loopback`, stand-in engines: no models are needed to test
the gateway), with no warm pool, so every call's actor is a cold start (a new Ray worker process)
while the caller is already streaming, and with `call.max_active_calls: 2`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.server import RunningServer, start_server, stop_server

FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit PCM


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    extra = [
        "asr.engine=standin", "llm.engine=standin", "tts.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0",
        "vad.engine=energy", "call.loopback=true", "call.pool_size=0", "call.max_active_calls=2",
        "dialogue.engine=rules",
    ]
    running = start_server(tmp_path_factory.mktemp("capacity"), extra)
    yield running
    assert stop_server(running) == 0, running.log_tail()


def _frame(number: int) -> str:
    pcm = struct.pack("<I", number) + bytes(FRAME_BYTES - 4)
    return json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode(), "metadata": {"sampleRate": 8000}})


async def _stream(ws: ClientConnection, first: int, count: int) -> None:
    """`count` tagged frames at real-time pace (20 ms each), as a phone line sends them."""
    for number in range(first, first + count):
        await ws.send(_frame(number))
        await asyncio.sleep(0.02)


async def _echoed(ws: ClientConnection, expected: int, timeout_s: float = 20.0) -> list[int]:
    numbers: list[int] = []
    async with asyncio.timeout(timeout_s):
        while len(numbers) < expected:
            message = json.loads(await ws.recv())
            if message.get("type") == "audio":
                numbers.append(struct.unpack_from("<I", base64.b64decode(message["data"]))[0])
    return numbers


def test_audio_sent_while_the_actor_cold_starts_is_all_echoed(small_server: RunningServer) -> None:
    """The relay reads (and keeps) audio while the directory starts the call's actor: nothing is lost."""

    async def scenario() -> list[int]:
        async with connect(small_server.connect_url("cold-1"), compression=None) as ws:
            sender = asyncio.create_task(_stream(ws, 0, 50))  # 1 s of audio from the first moment
            numbers = await _echoed(ws, 50)
            await sender
            await ws.send(json.dumps({"type": "stop"}))
            return numbers

    assert asyncio.run(scenario()) == list(range(50))


def test_a_call_over_the_limit_is_refused_with_1013_and_taken_once_one_ends(small_server: RunningServer) -> None:
    async def scenario() -> tuple[int | None, str, list[int]]:
        async with connect(small_server.connect_url("cap-a"), compression=None) as a, \
                connect(small_server.connect_url("cap-b"), compression=None) as b:
            for ws in (a, b):
                await _stream(ws, 0, 3)
                assert await _echoed(ws, 3) == [0, 1, 2]
            async with connect(small_server.connect_url("cap-c"), compression=None) as c:
                await c.send(_frame(0))
                with pytest.raises(ConnectionClosed) as refused:
                    await _echoed(c, 1)
            close = refused.value.rcvd
            # The two calls already up are untouched by the refusal.
            await _stream(b, 3, 2)
            assert await _echoed(b, 2) == [3, 4]
            await a.send(json.dumps({"type": "stop"}))
            await asyncio.wait_for(a.wait_closed(), 20)
            # With call A over (B still up), a new call is taken; A's slot frees when its actor reports
            # the end to the directory, a moment after the socket closes, so allow a retry or two.
            async with asyncio.timeout(30):
                while True:
                    async with connect(small_server.connect_url("cap-d"), compression=None) as d:
                        await d.send(_frame(7))
                        try:
                            echoed = await _echoed(d, 1)
                            break
                        except ConnectionClosed:
                            await asyncio.sleep(0.5)
        return (close.code if close else None), (close.reason if close else ""), echoed

    code, reason, echoed = asyncio.run(scenario())
    assert code == 1013
    assert "capacity" in reason
    assert echoed == [7]
    status, health = small_server.get("/healthz")
    assert status == 200 and health["refused_at_capacity"] >= 1
