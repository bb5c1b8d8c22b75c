"""Admission control and the cold-start claim, on a real server (its own: a small, special config).

The server runs the echo-test mode (`call.loopback`, stand-in engines: no models are needed to test
the gateway), with no warm pool, so every call's actor is a cold start (a new Ray worker process)
while the caller is already streaming, and with `call.max_active_calls: 2`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gateway_calls import echoed_numbers, stream_frames, tagged_frame
from tests.server import RunningServer, start_server, stop_server


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


def test_audio_sent_while_the_actor_cold_starts_is_all_echoed(small_server: RunningServer) -> None:
    """The relay reads (and keeps) audio while the directory starts the call's actor: nothing is lost."""

    async def scenario() -> list[int]:
        async with connect(small_server.connect_url("cold-1"), compression=None) as ws:
            sender = asyncio.create_task(stream_frames(ws, 0, 50))  # 1 s of audio from the first moment
            numbers = await echoed_numbers(ws, 50)
            await sender
            await ws.send(json.dumps({"type": "stop"}))
            return numbers

    assert asyncio.run(scenario()) == list(range(50))


def test_a_call_over_the_limit_is_refused_with_1013_and_taken_once_one_ends(small_server: RunningServer) -> None:
    async def scenario() -> tuple[int | None, str, list[int]]:
        async with connect(small_server.connect_url("cap-a"), compression=None) as a, \
                connect(small_server.connect_url("cap-b"), compression=None) as b:
            for ws in (a, b):
                await stream_frames(ws, 0, 3)
                assert await echoed_numbers(ws, 3) == [0, 1, 2]
            async with connect(small_server.connect_url("cap-c"), compression=None) as c:
                await c.send(tagged_frame(0))
                with pytest.raises(ConnectionClosed) as refused:
                    await echoed_numbers(c, 1)
            close = refused.value.rcvd
            # The two calls already up are untouched by the refusal.
            await stream_frames(b, 3, 2)
            assert await echoed_numbers(b, 2) == [3, 4]
            await a.send(json.dumps({"type": "stop"}))
            await asyncio.wait_for(a.wait_closed(), 20)
            # With call A over (B still up), a new call is taken; A's slot frees when its actor reports
            # the end to the directory, a moment after the socket closes, so allow a retry or two.
            async with asyncio.timeout(30):
                while True:
                    async with connect(small_server.connect_url("cap-d"), compression=None) as d:
                        await d.send(tagged_frame(7))
                        try:
                            echoed = await echoed_numbers(d, 1)
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
