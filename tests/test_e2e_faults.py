"""Faults injected into live calls on a real server: a killed call actor, a dropped socket, a hung replica.

The first two run on the shared real-model server (real Whisper, so the words said before and after
the fault can be told apart in the note's transcript). The call actor is killed with `ray.kill` from a
separate Ray driver, as an operator or a node failure would; the socket is dropped by aborting the
client's TCP connection (no close frame). The hung replica is a stand-in LLM that never answers
(`llm.standin_first_token_s`), on its own small server with short deadlines and grace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from iasovoice.audio.files import load_audio
from iasovoice.audio.pcm import array_to_pcm16, frame_samples
from iasovoice.config import load_config
from tests.paths import REPO, REPO_AUDIO
from tests.server import STANDIN_CALLS, RunningServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
RATE = 8000
EVENTS = "events=transcript,note_ready,ended"
BEFORE = ("LDC93S1_8k.wav", ("dark", "suit", "greasy", "water"))  # said before the fault
AFTER = ("librispeech_1272-128104-0000.wav", ("quilter", "apostle", "middle", "gospel"))  # said after it

KILL_CALL_ACTOR = """
import sys, time, ray
from actors import names
ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False, logging_level="ERROR")
actor = ray.get(ray.get_actor(names.DIRECTORY).lookup.remote(sys.argv[3]))
assert actor is not None, "the call has no actor"
pid = ray.get(actor.status.remote())["pid"]
ray.kill(actor)
print(pid, time.time(), flush=True)
"""


class LiveCall:
    """One websocket call whose server messages are collected as they arrive."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # an aborted socket ends the reader: what a test wants
            async for raw in self.ws:
                self.messages.append({**json.loads(raw), "_received_at": time.time()})
                self._new.set()
        self._new.set()

    async def say(self, samples: np.ndarray, trailing_silence_s: float = 1.5) -> None:
        """Caller audio at real-time pace, 20 ms a message, then silence so the turn ends."""
        audio = np.concatenate([samples, np.zeros(int(trailing_silence_s * RATE), np.int16)])
        n = frame_samples(RATE)
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(audio) - n + 1, n)):
            pcm = array_to_pcm16(audio[offset:offset + n])
            await self.ws.send(json.dumps({
                "type": "audio", "data": base64.b64encode(pcm).decode(), "metadata": {"sampleRate": RATE},
            }))
            delay = start + (index + 1) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def wait_for(self, predicate: Any, timeout_s: float) -> dict[str, Any]:
        """The first message (old or new) that satisfies `predicate`."""
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                self._new.clear()
                await self._new.wait()

    async def heard_out(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Until no agent audio has come for `quiet_s`: what was sent has been played to the caller."""
        async with asyncio.timeout(timeout_s):
            while True:
                audio = [m["_received_at"] for m in self.messages if m.get("type") == "audio"]
                quiet = time.time() - (audio[-1] if audio else 0.0)
                if quiet >= quiet_s:
                    return
                await asyncio.sleep(quiet_s - quiet)

    def transcripts(self, role: str) -> list[str]:
        return [m["text"] for m in self.messages if m.get("type") == "transcript" and m.get("role") == role]

    def abort(self) -> None:
        """Drop the connection without a close frame, as a failing network or carrier does."""
        self.ws.transport.abort()


@asynccontextmanager
async def live_call(url: str) -> AsyncIterator[LiveCall]:
    async with connect(url, open_timeout=30, max_size=None) as ws:
        call = LiveCall(ws)
        yield call


def _caller_said(words: tuple[str, ...]) -> Any:
    def match(message: dict[str, Any]) -> bool:
        text = message.get("text", "").lower()
        return message.get("type") == "transcript" and message.get("role") == "caller" and any(w in text for w in words)
    return match


def _agent_said(text: str) -> Any:
    return lambda m: m.get("type") == "transcript" and m.get("role") == "agent" and m.get("text", "").startswith(text)


def _type(kind: str) -> Any:
    return lambda m: m.get("type") == kind


def kill_call_actor(server: RunningServer, call_id: str) -> tuple[int, float]:
    """`ray.kill` the call's actor from another Ray driver; returns its pid and the wall time of the kill."""
    found = re.search(r"Ray cluster at (\S+) \(namespace (\S+)\)", server.log_path.read_text())
    assert found, "the server did not log its Ray address:\n" + server.log_tail()
    done = subprocess.run(
        [sys.executable, "-c", KILL_CALL_ACTOR, found.group(1), found.group(2), call_id],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        # A local Ray cluster has token auth on by default (token in ~/.ray/auth_token); a driver that
        # joins it from outside must say so, or it connects without the token and is refused.
        env={**os.environ, "RAY_AUTH_MODE": "token"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid, killed_at = done.stdout.strip().splitlines()[-1].split()
    return int(pid), float(killed_at)


def stored_transcript(server: RunningServer, call_id: str, timeout_s: float = 240.0) -> dict[str, Any]:
    record = server.record(call_id, "transcript", timeout_s)
    assert record is not None, f"no transcript for {call_id}:\n{server.log_tail()}"
    return record


def _caller_text(record: dict[str, Any]) -> str:
    return " ".join(turn["text"] for turn in record["turns"] if turn["role"] == "caller").lower()


def _recording(name: str) -> np.ndarray:
    return load_audio(REPO_AUDIO / name, RATE)


async def _greeted_then_first_turn(call: LiveCall) -> None:
    """The greeting heard, then the caller's first turn (`BEFORE`) recognised."""
    await call.wait_for(_agent_said(load_config().call.greeting), 60)
    await call.say(_recording(BEFORE[0]))
    await call.wait_for(_caller_said(BEFORE[1]), 90)


# ------------------------------------------------------------------------ on the real-model server
def test_a_killed_call_actor_is_replaced_and_the_note_has_every_utterance(server: RunningServer) -> None:
    call_id = "fault-kill-1"

    async def scenario() -> int:
        async with live_call(server.connect_url(call_id, EVENTS)) as call:
            await _greeted_then_first_turn(call)
            pid, killed_at = await asyncio.to_thread(kill_call_actor, server, call_id)
            # The same socket goes on: the gateway resumes the call on a new actor, which says so.
            resumed = await call.wait_for(_agent_said(load_config().call.scripts.resumed), 60)
            print(f"\n[reliability] call actor killed -> resumed script heard: "
                  f"{resumed['_received_at'] - killed_at:.2f} s")
            await call.say(_recording(AFTER[0]))
            await call.wait_for(_caller_said(AFTER[1]), 90)
            await call.ws.send(json.dumps({"type": "stop"}))
            await call.wait_for(_type("note_ready"), 300)
            return pid

    killed_pid = asyncio.run(scenario())
    record = stored_transcript(server, call_id)
    said = _caller_text(record)
    assert any(w in said for w in BEFORE[1]) and any(w in said for w in AFTER[1]), record["turns"]
    assert "call_actor_recovered" in record["flags"]
    assert [t["utterance_id"] for t in record["turns"]].count("u1") == 1  # ids went on, nothing overwritten
    note = server.note(call_id)
    assert note is not None and note["call_id"] == call_id
    status, health = server.get("/healthz")
    assert status == 200 and health["actor_deaths"] >= 1 and health["calls_resumed"] >= 1
    assert killed_pid > 0


def test_a_dropped_socket_that_reconnects_in_the_grace_period_goes_on_with_the_same_call(
    server: RunningServer,
) -> None:
    call_id = "fault-drop-1"
    greeting = load_config().call.greeting

    async def scenario() -> None:
        async with live_call(server.connect_url(call_id, EVENTS)) as first:
            await _greeted_then_first_turn(first)
            first.abort()
        await asyncio.sleep(2.0)
        async with live_call(server.connect_url(call_id, EVENTS)) as second:
            await second.say(_recording(AFTER[0]))
            await second.wait_for(_caller_said(AFTER[1]), 90)
            assert greeting not in second.transcripts("agent")  # the same call, not a new one
            # A hang-up; the transcript is stored at once, before the note (the kill test waits for one).
            await second.ws.send(json.dumps({"type": "stop"}))

    asyncio.run(scenario())
    record = stored_transcript(server, call_id)
    said = _caller_text(record)
    assert any(w in said for w in BEFORE[1]) and any(w in said for w in AFTER[1]), record["turns"]
    assert "call_actor_recovered" not in record["flags"]


# ------------------------------------------------------------ a server whose LLM replica never answers
HUNG = [
    *STANDIN_CALLS, "llm.standin_first_token_s=100000", "call.deadlines.llm_first_text_s=2",
    "call.note_timeout_s=3", "call.reconnect_grace_s=6", "call.pool_size=2",
]


@pytest.fixture(scope="module")
def hung_llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("hung-llm"), HUNG)
    yield running
    stop_server(running)


def test_a_replica_that_never_answers_gives_the_caller_the_fallback_within_its_deadline(
    hung_llm_server: RunningServer,
) -> None:
    server = hung_llm_server
    fallback = load_config().call.scripts.reply_failed

    async def scenario() -> float:
        async with live_call(server.connect_url("fault-hung-1", EVENTS)) as call:
            await call.say(_recording(BEFORE[0]))
            await call.wait_for(lambda m: m.get("type") == "transcript" and m.get("role") == "caller", 30)
            asked = time.monotonic()
            await call.wait_for(_agent_said(fallback), 30)
            waited = time.monotonic() - asked
            # Hear it out before hanging up: a reply cut by the hang-up is stored as far as it was heard.
            await call.heard_out()
            await call.ws.send(json.dumps({"type": "stop"}))
            await call.wait_for(_type("call_ended"), 60)
            return waited

    waited = asyncio.run(scenario())
    assert waited < 2.0 + 3.0, f"fallback after {waited:.1f} s (deadline 2 s)"
    record = stored_transcript(server, "fault-hung-1", 60)
    assert "reply_failed" in record["flags"]
    assert any(turn["text"] == fallback for turn in record["turns"]), record["turns"]
    metrics = Path(server.root / "metrics.jsonl").read_text()
    assert "DeadlineExpired_llm" in metrics


async def _say_then_drop(server: RunningServer, call_id: str) -> None:
    """One caller turn, recognised, then the connection dropped without a close frame."""
    async with live_call(server.connect_url(call_id, EVENTS)) as call:
        await call.say(_recording(BEFORE[0]))
        await call.wait_for(lambda m: m.get("type") == "transcript" and m.get("role") == "caller", 30)
        call.abort()


def test_a_dropped_socket_that_never_comes_back_is_finalised_after_the_grace_period(
    hung_llm_server: RunningServer,
) -> None:
    server = hung_llm_server

    asyncio.run(_say_then_drop(server, "fault-gone-1"))
    record = stored_transcript(server, "fault-gone-1", 60)  # grace 6 s, then the records are written
    assert [t for t in record["turns"] if t["role"] == "caller"]


def test_a_killed_actor_whose_caller_is_gone_too_is_finalised_with_its_transcript(
    hung_llm_server: RunningServer,
) -> None:
    server = hung_llm_server

    asyncio.run(_say_then_drop(server, "fault-both-1"))
    # Within the 6 s the call waits for its caller, its actor dies: nobody is left to resume it.
    kill_call_actor(server, "fault-both-1")
    record = stored_transcript(server, "fault-both-1", 90)
    assert [t for t in record["turns"] if t["role"] == "caller"]
    assert "call_actor_recovered" in record["flags"]


# ------------------------------------------------------------------------------- graceful shutdown
def test_sigterm_takes_no_new_call_and_finishes_the_live_calls_note_before_exiting(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from iasovoice.storage.local_store import LocalEncryptedStore, load_or_create_key
    from tests.gateway_calls import refused

    server = start_server(tmp_path_factory.mktemp("drain"), [*STANDIN_CALLS, "server.drain_timeout_s=3"])
    try:
        async def scenario() -> tuple[int, str, str]:
            async with live_call(server.connect_url("drain-live-1", EVENTS)) as call:
                await call.say(_recording(BEFORE[0]))
                await call.wait_for(lambda m: m.get("type") == "transcript" and m.get("role") == "caller", 30)
                server.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(1.0)
                code, reason = await refused(server.connect_url("drain-new-1"))
                ended = await call.wait_for(_type("call_ended"), 60)  # hung up after server.drain_timeout_s
                return code, reason, ended["reason"]

        code, reason, ended = asyncio.run(scenario())
        assert (code, reason) == (1013, "server shutting down; try again later")
        assert server.process.wait(120) == 0, server.log_tail()
    finally:
        stop_server(server)
    assert ended == "completed"
    store = LocalEncryptedStore(server.root / "calls", load_or_create_key(server.root / "storage.key"))
    assert store.get("drain-live-1", "note") is not None, server.log_tail()
    record = json.loads(store.get("drain-live-1", "transcript") or b"{}")
    assert [t for t in record["turns"] if t["role"] == "caller"]
    assert store.get("drain-new-1", "transcript") is None
