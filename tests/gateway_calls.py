"""Websocket client steps shared by the gateway tests: a call that must open, one that must not, tagged audio.

Tagged frames carry their number in their first four bytes, so a test against an echo-test server
(`tests.server.STANDIN_ECHO`) can tell that every frame came back, in order and byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME = json.dumps({"type": "audio", "data": base64.b64encode(b"\x01\x00" * 160).decode()})
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit PCM


async def echo_call(url: str, headers: dict[str, str] | None = None) -> None:
    """Open the call, send one frame and get agent audio back: the call reached a call actor.

    Meant for a server in echo-test mode (`tests.server.STANDIN_ECHO`), where a frame comes straight back.
    """
    async with connect(url, additional_headers=headers, open_timeout=20) as ws:
        await ws.send(FRAME)
        async with asyncio.timeout(20):
            while json.loads(await ws.recv())["type"] != "audio":
                pass


async def refused(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """The close code and reason of a call refused after the handshake, before any audio."""
    async with connect(url, additional_headers=headers, open_timeout=20) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 20)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def tagged_frame(number: int) -> str:
    """A 20 ms 8 kHz audio message whose PCM starts with `number`, so its echo can be told apart."""
    pcm = struct.pack("<I", number) + bytes(FRAME_BYTES - 4)
    return json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode(), "metadata": {"sampleRate": 8000}})


async def stream_frames(ws: ClientConnection, first: int, count: int) -> None:
    """`count` tagged frames at real-time pace (20 ms each), as a phone line sends them."""
    for number in range(first, first + count):
        await ws.send(tagged_frame(number))
        await asyncio.sleep(0.02)


async def echoed_numbers(ws: ClientConnection, expected: int, timeout_s: float = 20.0) -> list[int]:
    """The tags of the next `expected` agent audio messages (other messages are skipped)."""
    numbers: list[int] = []
    async with asyncio.timeout(timeout_s):
        while len(numbers) < expected:
            message = json.loads(await ws.recv())
            if message.get("type") == "audio":
                numbers.append(struct.unpack_from("<I", base64.b64decode(message["data"]))[0])
    return numbers
