"""A caller on the gateway protocol: streams real audio in 20 ms frames at real-time pace.

Used by `iasovoice call`, the demo, the end-to-end tests and the load tester. Between caller turns it
keeps streaming silence (as a telephone line does) until the agent has answered, so barge-in and
endpointing see what they would see on a real call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
import websockets

from iasovoice.audio.pcm import array_to_pcm16, frame_samples, pcm16_to_array

EventCallback = Callable[[dict[str, Any]], None]


@dataclass
class TurnTiming:
    """Voice-to-voice: end of the caller's turn → first agent audio frame after it."""

    caller_end: float
    first_reply_audio: float | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.first_reply_audio is None else self.first_reply_audio - self.caller_end


@dataclass
class CallReport:
    call_id: str
    sample_rate: int
    connect_s: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    agent_audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    turns: list[TurnTiming] = field(default_factory=list)
    clears: int = 0
    errors: list[str] = field(default_factory=list)
    note_ready: bool = False
    ended: str | None = None
    close_code: int | None = None
    frames_sent: int = 0

    def transcript(self, role: str | None = None) -> list[str]:
        """Each turn's text in order; a turn sent again (a reply cut by a barge-in) is its last version."""
        latest: dict[str, str] = {}
        for event in self.events:
            if event.get("type") == "transcript" and (role is None or event["role"] == role):
                latest[event.get("utterance_id") or f"#{len(latest)}"] = event["text"]
        return list(latest.values())

    def agent_timeline(self) -> np.ndarray:
        """Agent audio placed at the time it arrived (silence between replies), for saving as a WAV."""
        if not self.agent_audio:
            return np.zeros(0, dtype=np.int16)
        t0 = self.agent_audio[0][0]
        out: list[np.ndarray] = []
        cursor = 0
        for arrived, frame in self.agent_audio:
            position = int((arrived - t0) * self.sample_rate)
            if position > cursor:
                out.append(np.zeros(position - cursor, dtype=np.int16))
                cursor = position
            out.append(frame)
            cursor += len(frame)
        return np.concatenate(out)


class _Receiver:
    def __init__(self, report: CallReport, on_event: EventCallback | None) -> None:
        self.report = report
        self.on_event = on_event
        self.last_audio_at = 0.0
        self.audio_frames = 0
        self.done = asyncio.Event()

    async def run(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._on_message(raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.report.close_code = ws.close_code
            self.done.set()

    def _on_message(self, raw: str | bytes) -> None:
        now = time.monotonic()
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "audio":
            frame = pcm16_to_array(base64.b64decode(message["data"]))
            self.report.agent_audio.append((now, frame))
            self.last_audio_at = now
            self.audio_frames += 1
            pending = self.report.turns[-1] if self.report.turns else None
            if pending is not None and pending.first_reply_audio is None:
                pending.first_reply_audio = now
            return
        if kind == "clear":
            self.report.clears += 1
        elif kind == "note_ready":
            self.report.note_ready = True
        elif kind == "call_ended":
            self.report.ended = message.get("reason")
        elif kind == "error":
            self.report.errors.append(message.get("message", ""))
        self.report.events.append(message)
        if self.on_event is not None:
            self.on_event(message)


async def _stream(ws: Any, samples: np.ndarray, sample_rate: int, report: CallReport, realtime: bool) -> None:
    n = frame_samples(sample_rate)
    metadata = {"sampleRate": sample_rate, "encoding": "pcm"}
    start = time.monotonic()
    for index, offset in enumerate(range(0, len(samples), n)):
        frame = samples[offset:offset + n]
        if len(frame) < n:
            frame = np.concatenate([frame, np.zeros(n - len(frame), dtype=np.int16)])
        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(array_to_pcm16(frame)).decode(), "metadata": metadata}))
        report.frames_sent += 1
        if realtime:
            delay = start + (index + 1) * n / sample_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


async def _wait_for_reply(
    ws: Any, receiver: _Receiver, sample_rate: int, report: CallReport, quiet_s: float, max_wait_s: float
) -> None:
    """Stream line silence until the agent has spoken and then been quiet for `quiet_s`."""
    silence = np.zeros(int(sample_rate * 0.2), dtype=np.int16)
    started = time.monotonic()
    turn = report.turns[-1] if report.turns else None
    while time.monotonic() - started < max_wait_s and not receiver.done.is_set():
        answered = turn is None or turn.first_reply_audio is not None
        if answered and time.monotonic() - receiver.last_audio_at > quiet_s:
            return
        await _stream(ws, silence, sample_rate, report, realtime=True)


async def place_call(
    url: str,
    call_id: str,
    turns: list[np.ndarray],
    sample_rate: int = 8000,
    *,
    on_event: EventCallback | None = None,
    realtime: bool = True,
    wait_greeting: bool = True,
    reply_quiet_s: float = 0.8,
    reply_timeout_s: float = 30.0,
    note_timeout_s: float = 180.0,
    events: str = "transcript,note_ready,ended",
    open_timeout_s: float = 10.0,
    token: str | None = None,
    extra_query: Mapping[str, str] | None = None,
) -> CallReport:
    """Call `url/connect/{call_id}`, speak each turn after the agent finishes, then hang up politely.

    Hang-up is `{"type":"stop"}`; the socket stays open until the server reports the note stored (or
    `note_timeout_s` passes), so the caller sees the whole call through. `extra_query` adds parameters
    to the URL, as a carrier's bridge may (tests use it to send what must never be logged).
    """
    report = CallReport(call_id, sample_rate)
    target = f"{url.rstrip('/')}/connect/{call_id}?events={events}&sampleRate={sample_rate}"
    if extra_query:
        target += f"&{urlencode(dict(extra_query))}"
    # In the header, not the query: a URL's query can end up in proxy logs, and a token may carry
    # the call's attributes (PHI).
    headers = {"Authorization": f"Bearer {token}"} if token else None
    connect_started = time.monotonic()
    async with websockets.connect(target, max_size=None, open_timeout=open_timeout_s, additional_headers=headers) as ws:
        report.connect_s = time.monotonic() - connect_started
        receiver = _Receiver(report, on_event)
        receiving = asyncio.create_task(receiver.run(ws))
        try:
            if wait_greeting:
                report.turns.append(TurnTiming(time.monotonic()))
                await _wait_for_reply(ws, receiver, sample_rate, report, reply_quiet_s, reply_timeout_s)
                report.turns.pop()  # the greeting is not a caller turn
            for samples in turns:
                await _stream(ws, samples, sample_rate, report, realtime)
                report.turns.append(TurnTiming(time.monotonic()))
                await _wait_for_reply(ws, receiver, sample_rate, report, reply_quiet_s, reply_timeout_s)
            if not receiver.done.is_set():
                await ws.send(json.dumps({"type": "stop"}))
            await asyncio.wait_for(receiver.done.wait(), note_timeout_s)
        except (TimeoutError, websockets.ConnectionClosed):
            pass
        finally:
            receiving.cancel()
    return report
