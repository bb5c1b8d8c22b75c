"""The measuring caller for benches 1–3: many concurrent echo-test calls from one asyncio process.

Every call streams 20 ms PCM frames at real-time pace. A frame's first 6 bytes carry its number, and
since loopback (and the plain echo server) hand the bytes back unchanged, each returning frame tells
which frame it was: per-frame latency is its send time → the time it came back. A frame sent inside a
measurement window that has not come back by the time the window is read (after a drain) is lost.

One ticker task paces all calls, spread over `SLOTS` offsets within the 20 ms frame so the sends are not
one burst, instead of a sleeping task per call (10,000 timer wake-ups a second at 200 calls).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

FRAME_MS = 20
SLOTS = 10
MAGIC = 0x1A50
_TAG = struct.Struct("<IH")  # frame number, magic: 6 bytes = 8 base64 characters, then the rest of the frame


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


@dataclass
class _Call:
    index: int
    ws: websockets.ClientConnection
    sent: list[float] = field(default_factory=list)  # send time by frame number
    latency: dict[int, float] = field(default_factory=dict)  # frame number -> seconds
    bad: int = 0
    closed: bool = False


@dataclass
class WindowStats:
    calls: int
    frames_sent: int
    frames_lost: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    seconds: float

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(vars(self))


class LoadCaller:
    """Echo-test calls to `url_for(i)`; add calls while others run, read stats over time windows."""

    def __init__(self, url_for, sample_rate: int = 8000, audio: np.ndarray | None = None) -> None:
        self._url_for = url_for
        self._rate = sample_rate
        n = sample_rate * FRAME_MS // 1000
        self._frame_bytes = 2 * n
        # Caller audio: silence by default, or a recording played in a loop (memory bench, active calls).
        self._audio = (audio if audio is not None else np.zeros(n * 50, dtype=np.int16)).astype("<i2")
        self._audio_frames = max(1, len(self._audio) // n)
        self._b64_tails = [
            base64.b64encode(self._audio[i * n:(i + 1) * n].tobytes()[_TAG.size:]).decode()
            for i in range(self._audio_frames)
        ]
        self._metadata = json.dumps({"sampleRate": sample_rate, "encoding": "pcm"})
        self.calls: list[_Call] = []
        self._receivers: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        self.connect_failures = 0

    # --------------------------------------------------------------------------------------- calls
    async def add_calls(self, count: int, concurrency: int = 16) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                try:
                    ws = await websockets.connect(self._url_for(index), max_size=None, open_timeout=60,
                                                  ping_interval=None, compression=None)
                except (OSError, websockets.WebSocketException, TimeoutError):
                    self.connect_failures += 1
                    return
            call = _Call(index, ws)
            self.calls.append(call)
            self._receivers.append(asyncio.create_task(self._receive(call)))

        start = len(self.calls) + self.connect_failures
        await asyncio.gather(*(one(start + i) for i in range(count)))
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def wait_flowing(self, timeout_s: float) -> float:
        """Wait until every call has had a frame back (its actor is bound and echoing); returns seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if all(call.latency or call.closed for call in self.calls):
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for call in self.calls:
            call.closed = True
            with contextlib.suppress(Exception):
                await call.ws.send('{"type":"stop"}')
        await asyncio.gather(*(c.ws.close() for c in self.calls), return_exceptions=True)
        for task in self._receivers:
            task.cancel()

    # ------------------------------------------------------------------------------------- traffic
    def _message(self, number: int) -> str:
        data = base64.b64encode(_TAG.pack(number, MAGIC)).decode() + self._b64_tails[number % self._audio_frames]
        return '{"type":"audio","data":"' + data + '","metadata":' + self._metadata + "}"

    async def _tick(self) -> None:
        period = FRAME_MS / 1000.0
        slot_s = period / SLOTS
        next_at = time.monotonic()
        slot = 0
        while True:
            group = [c for c in self.calls if c.index % SLOTS == slot and not c.closed]
            for call in group:
                number = len(call.sent)
                call.sent.append(time.monotonic())
                try:
                    await call.ws.send(self._message(number))
                except websockets.ConnectionClosed:
                    call.closed = True
            slot = (slot + 1) % SLOTS
            next_at += slot_s
            delay = next_at - time.monotonic()
            if delay < -period:  # the client itself fell behind: do not burst
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def _receive(self, call: _Call) -> None:
        try:
            async for raw in call.ws:
                now = time.monotonic()
                if not isinstance(raw, str):
                    continue
                at = raw.find('"data":"')
                if at < 0:
                    continue  # transcripts, clears, errors: not audio
                try:
                    number, magic = _TAG.unpack(base64.b64decode(raw[at + 8:at + 16]))
                except (ValueError, struct.error):
                    call.bad += 1
                    continue
                if magic != MAGIC or number >= len(call.sent):
                    call.bad += 1  # agent audio that is not an echo (a greeting on a non-loopback call)
                    continue
                call.latency.setdefault(number, now - call.sent[number])
        except websockets.ConnectionClosed:
            pass
        finally:
            call.closed = True

    # ---------------------------------------------------------------------------------------- stats
    def window(self, start: float, end: float) -> WindowStats:
        """Frames sent in [start, end): lost if not back yet (read this after a drain), latency if back."""
        sent = lost = 0
        latencies: list[float] = []
        live = 0
        for call in self.calls:
            numbers = [i for i, t in enumerate(call.sent) if start <= t < end]
            if numbers:
                live += 1
            for number in numbers:
                sent += 1
                value = call.latency.get(number)
                if value is None:
                    lost += 1
                else:
                    latencies.append(value * 1000)
        return WindowStats(
            live, sent, lost, percentile(latencies, 50), percentile(latencies, 90), percentile(latencies, 99),
            max(latencies) if latencies else None, end - start,
        )
