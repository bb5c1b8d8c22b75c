"""Bad input against the real gateway: a clear error, a clean close, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.server import RunningServer

pytestmark = pytest.mark.e2e


async def _first_non_audio(ws: websockets.ClientConnection, timeout_s: float = 10.0) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if message["type"] != "audio":
            return message


def test_malformed_messages_get_errors_and_the_call_goes_on(server: RunningServer) -> None:
    async def run() -> None:
        async with websockets.connect(server.connect_url("bad-json-call")) as ws:
            await ws.send("this is not json")
            error = await _first_non_audio(ws)
            assert error["type"] == "error" and "JSON" in error["message"]
            await ws.send(json.dumps({"type": "audio", "data": "%%%not-base64%%%"}))
            assert "base64" in (await _first_non_audio(ws))["message"]
            await ws.send(json.dumps({"type": "fax"}))
            assert "fax" in (await _first_non_audio(ws))["message"]
            await ws.send(b"\x00\x01binary")
            assert (await _first_non_audio(ws))["type"] == "error"
            # The call survived all of it: valid audio is still accepted and agent audio still flows.
            frame = base64.b64encode(b"\x00\x00" * 160).decode()
            await ws.send(json.dumps({"type": "audio", "data": frame}))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] in ("audio", "error")

    asyncio.run(run())


def test_unsupported_sample_rate_is_refused_with_reason(server: RunningServer) -> None:
    async def run() -> None:
        async with websockets.connect(server.connect_url("bad-rate-call")) as ws:
            frame = base64.b64encode(b"\x00\x00" * 882).decode()
            await ws.send(json.dumps({"type": "audio", "data": frame, "metadata": {"sampleRate": 44100}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert error["type"] == "error" and "44100" in error["message"] and "8000" in error["message"]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003

    asyncio.run(run())


def test_huge_message_closes_with_1009(server: RunningServer) -> None:
    async def run() -> None:
        async with websockets.connect(server.connect_url("huge-call"), max_size=None) as ws:
            await ws.send(json.dumps({"type": "audio", "data": "A" * (3 * 1024 * 1024)}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(run())


@pytest.mark.parametrize("path", ["/connect/..%2F..%2Fetc", "/connect/a..b", "/connect/"])
def test_bad_call_ids_are_refused_before_the_handshake(server: RunningServer, path: str) -> None:
    async def run() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(server.url + path):
                pass
        assert refused.value.response.status_code == 400
        assert b"error" in refused.value.response.body

    asyncio.run(run())


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("?token=" + "0" * 64, "malformed token"),
        ("", "missing token"),
        ("?token={other}", "token for another call"),
    ],
)
def test_forged_missing_and_misused_tokens_close_with_1008(server: RunningServer, query: str, reason: str) -> None:
    async def run() -> None:
        url = f"{server.url}/connect/victim-call{query.format(other=server.token('other-call'))}"
        async with websockets.connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, reason)

    asyncio.run(run())


def test_http_routes_for_unknown_calls_and_paths(server: RunningServer) -> None:
    status, body = server.get(f"/calls/never-called/note?token={server.token('never-called')}")
    assert status == 404 and "never-called" in body["error"]
    status, body = server.get("/calls/never-called/note")
    assert status == 401 and body == {"error": "missing token", "reason": "missing"}
    status, body = server.get("/nope")
    assert status == 404
    status, body = server.get("/healthz")
    assert status == 200 and body["status"] == "ok"
    status, body = server.get("/readyz")
    assert status == 200 and body["status"] == "ready"
