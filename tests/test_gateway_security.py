"""Call ids, HS256 call tokens, /metrics and /readyz against a real `iasovoice serve` (stand-in engines).

One server for the module (echo-test calls: a caller frame comes back as agent audio, so "the call
passed" means a call actor was claimed and answered). Every check goes over a real websocket handshake
or a real HTTP GET, as a carrier or a monitoring system would make it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.gateway_calls import echo_call, refused
from tests.server import SECRET, SECRET_ENV, STANDIN_ECHO, RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("security"), STANDIN_ECHO)
    yield running
    assert stop_server(running) == 0, running.log_tail()


def _hs256(claims: dict) -> str:
    return jwt.encode(claims, SECRET.encode(), algorithm="HS256")


def _http_status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# ------------------------------------------------------------------------------------------ call ids
@pytest.mark.parametrize(
    "path",
    ["a..b", "../x", "..%2Fx", "", "x" * 129, "%C3%A9t%C3%A9", "é", ".hidden", "a%20b"],
    ids=["double-dot", "traversal", "encoded-traversal", "empty", "129-chars", "encoded-unicode", "unicode",
         "leading-dot", "space"],
)
def test_bad_call_ids_get_400_before_the_handshake(gateway: RunningServer, path: str) -> None:
    async def run() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{gateway.url}/connect/{path}", open_timeout=20):
                pass
        assert refused.value.response.status_code == 400
        assert "call id" in json.loads(refused.value.response.body)["error"]

    asyncio.run(run())
    status, _ = gateway.get(f"/calls/{quote(path, safe='%/.')}/note")  # urllib sends ASCII only
    assert status == 400


@pytest.mark.parametrize(
    "call_id",
    ["7c1b5a3e-2d4f-4e8a-9b6c-0123456789ab", "CA" + "0123456789abcdef" * 2, "call_1.v2", "x" * 128],
    ids=["connect-contact-id", "twilio-call-sid", "test-name", "128-chars"],
)
def test_valid_call_ids_open_a_call(gateway: RunningServer, call_id: str) -> None:
    asyncio.run(echo_call(gateway.connect_url(call_id)))


# ---------------------------------------------------------------------------------------- tokens
def test_valid_token_in_query_or_authorization_header_opens_the_call(gateway: RunningServer) -> None:
    asyncio.run(echo_call(f"{gateway.url}/connect/hs-query?token={gateway.token('hs-query')}"))
    header = {"Authorization": f"Bearer {gateway.token('hs-header')}"}
    asyncio.run(echo_call(f"{gateway.url}/connect/hs-header", header))


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda s: f"{s.url}/connect/victim", "missing token"),
        (lambda s: f"{s.url}/connect/victim?token={s.token('other-call')}", "token for another call"),
        (lambda s: f"{s.url}/connect/victim?token={_hs256({'sub': 'victim', 'exp': int(time.time()) - 120})}",
         "token expired"),
        (lambda s: f"{s.url}/connect/victim?token={_tamper(s.token('victim'))}", "bad signature"),
        (lambda s: f"{s.url}/connect/victim?token=" + "0" * 64, "malformed token"),
        (lambda s: f"{s.url}/connect/victim?token={_hs256({'sub': 'victim'})}", "token lacks the 'exp' claim"),
    ],
    ids=["missing", "other-call", "expired", "tampered", "old-hex-hmac", "no-exp"],
)
def test_refused_tokens_close_with_1008_and_a_reason(gateway: RunningServer, make_url, reason: str) -> None:
    code, said = asyncio.run(refused(make_url(gateway)))
    assert (code, said) == (1008, reason)


def test_a_forged_bearer_header_is_refused_even_with_a_good_query_token(gateway: RunningServer) -> None:
    """The header wins: a request cannot carry a bad header and fall back on a token in the URL."""
    header = {"Authorization": f"Bearer {gateway.token('someone-else')}"}
    code, reason = asyncio.run(refused(gateway.connect_url("header-wins"), header))
    assert (code, reason) == (1008, "token for another call")


def _tamper(token: str) -> str:
    """Flip a character in the middle of the signature (the last one may only hold padding bits)."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1:]}"


def test_record_routes_take_the_same_tokens(gateway: RunningServer) -> None:
    status, body = gateway.get(f"/calls/never-called/note?token={gateway.token('never-called')}")
    assert status == 404 and "never-called" in body["error"]
    status, body = gateway.get("/calls/never-called/transcript")
    assert (status, body) == (401, {"error": "missing token", "reason": "missing"})
    status, body = gateway.get(f"/calls/never-called/note?token={gateway.token('other-call')}")
    assert (status, body["reason"]) == (401, "wrong_call")
    request = urllib.request.Request(
        f"{gateway.http}/calls/never-called/note", headers={"Authorization": f"Bearer {gateway.token('never-called')}"}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=10)
    assert missing.value.code == 404  # authorized; simply nothing stored


def test_token_command_mints_a_token_the_server_accepts(gateway: RunningServer) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "iasovoice.cli", "--set", "server.auth.mode=jwt-hs256",
         "--set", f"server.auth.secret_env={SECRET_ENV}", "token", "cli-minted", "--ttl", "120"],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, SECRET_ENV: SECRET},
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    claims = jwt.decode(token, SECRET.encode(), algorithms=["HS256"])
    assert claims["sub"] == "cli-minted" and claims["exp"] - claims["iat"] == 120
    asyncio.run(echo_call(f"{gateway.url}/connect/cli-minted?token={token}"))


# ------------------------------------------------------------------------------- metrics, readyz
def _scrape(gateway: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = _http_status(f"{gateway.http}/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_rejected_tokens_and_bad_messages(gateway: RunningServer) -> None:
    before = _scrape(gateway)
    for name in ("iasovoice_transcription_latency_seconds_count", "iasovoice_soap_generation_seconds_count",
                 "iasovoice_voice_to_voice_seconds_count", "iasovoice_call_actor_restarts_total",
                 "iasovoice_websocket_connections"):
        assert (name, ()) in before, name
    expired = ("iasovoice_auth_rejections_total", (("reason", "expired"),))
    not_json = ("iasovoice_bad_messages_total", (("kind", "not_json"),))
    assert expired in before and not_json in before  # known labels exist at 0 before the first event

    stale = _hs256({"sub": "metrics-call", "exp": int(time.time()) - 120})
    assert asyncio.run(refused(f"{gateway.url}/connect/metrics-call?token={stale}"))[0] == 1008

    async def malformed_then_connected() -> float:
        async with connect(gateway.connect_url("metrics-call"), open_timeout=20) as ws:
            await ws.send("this is not json")
            async with asyncio.timeout(20):
                while (message := json.loads(await ws.recv()))["type"] != "error":
                    pass
            assert "JSON" in message["message"]
            return (await asyncio.to_thread(_scrape, gateway))[("iasovoice_websocket_connections", ())]

    open_now = asyncio.run(malformed_then_connected())
    after = _scrape(gateway)
    assert after[expired] == before[expired] + 1
    assert after[not_json] == before[not_json] + 1
    assert open_now >= 1


def test_readyz_answers_once_serving(gateway: RunningServer) -> None:
    status, body = _http_status(f"{gateway.http}/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ready"})


# ------------------------------------------------------------------------------------ stalled caller
def test_a_caller_that_stops_reading_is_cut_off_after_the_send_deadline(gateway: RunningServer) -> None:
    """A client that never reads fills the socket; the gateway drops it after `server.send_timeout_s`.

    The client's receive buffer is made tiny and its websocket queue one message deep, so the echoed
    audio backs up into the gateway's send; the client floods frames until the gateway cuts it off.
    """
    from websockets.exceptions import ConnectionClosed

    from tests.gateway_calls import tagged_frame

    async def scenario() -> tuple[int | None, float]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so the window stays small
        sock.connect(("127.0.0.1", gateway.port))
        started = time.monotonic()
        async with connect(gateway.connect_url("stall-1"), sock=sock, max_queue=1, open_timeout=20) as ws:
            try:
                async with asyncio.timeout(90):
                    number = 0
                    while True:
                        await ws.send(tagged_frame(number))
                        number += 1
                        if number % 200 == 0:
                            await asyncio.sleep(0)
            except ConnectionClosed:
                pass
            return ws.close_code, time.monotonic() - started

    code, took = asyncio.run(scenario())
    assert code == 1006, f"expected the gateway to drop the stalled socket, got close code {code}"
    log = gateway.log_path.read_text()
    assert "call stall-1: caller socket stalled" in log, gateway.log_tail()
    assert took < 90
    asyncio.run(echo_call(gateway.connect_url("after-stall-1")))  # the gateway itself is fine
