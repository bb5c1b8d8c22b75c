"""Websocket client steps shared by the gateway security tests: a call that must open, one that must not."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FRAME = json.dumps({"type": "audio", "data": base64.b64encode(b"\x01\x00" * 160).decode()})


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
