"""Ramping and running simulated calls, all on one asyncio loop.

Each simulated call is a real websocket client on the gateway protocol: it waits for the greeting,
speaks recorded caller turns in 20 ms frames paced by the clock, streams line silence while the agent
answers, hangs up with `{"type":"stop"}` and then checks that the SOAP note can be fetched.

Per frame a call does one dictionary-free step: pick a pre-encoded string, send it, sleep until the
next absolute 20 ms deadline. Absolute deadlines keep the pace exact however long a send takes, and
the lag behind them is recorded, so a run can tell an overloaded server from an overloaded load
generator. Incoming agent audio is recognised by its prefix without JSON parsing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from iasovoice.loadtest.audio import AudioPool, LoadTestError
from iasovoice.loadtest.metrics import FRAME_S, CallRecord, ReplyTracker

log = logging.getLogger(__name__)

AUDIO_PREFIX = '{"type":"audio"'  # how the gateway serialises agent audio (iasovoice.protocol)
STOP_MESSAGE = '{"type":"stop"}'
MAX_CATCH_UP_S = 1.0  # a sender more than this behind its deadlines resynchronises instead of bursting
MAX_TURNS_PER_CALL = 1000
NOTE_POLL_INTERVAL_S = 1.0
MAX_CALLS = 5000
MAX_ERROR_TEXT = 200
TokenFor = Callable[[str], "str | None"]


@dataclass(frozen=True)
class LoadSettings:
    url: str
    calls: int
    ramp_s: float
    duration_s: float
    reply_quiet_s: float = 0.8  # agent silence that means its reply is over (as iasovoice.client)
    reply_timeout_s: float = 30.0  # a turn with no reply audio by then is an error
    note_timeout_s: float = 180.0  # stop → note available; 0 skips the note check
    connect_timeout_s: float = 10.0
    run_id: str = ""

    def validate(self) -> None:
        if not self.url.startswith(("ws://", "wss://")):
            raise LoadTestError(f"--url must be a ws:// or wss:// gateway address, got {self.url!r}")
        if not 1 <= self.calls <= MAX_CALLS:
            raise LoadTestError(f"--calls must be between 1 and {MAX_CALLS}, got {self.calls}")
        for name, value, top in (("--ramp", self.ramp_s, 3600), ("--duration", self.duration_s, 3600),
                                 ("--reply-timeout", self.reply_timeout_s, 600),
                                 ("--note-timeout", self.note_timeout_s, 3600)):
            if not 0 <= value <= top:
                raise LoadTestError(f"{name} must be between 0 and {top} seconds, got {value}")

    def call_id(self, index: int) -> str:
        return f"lt-{self.run_id}-{index:04d}"

    def call_bound_s(self, longest_turn_s: float) -> float:
        """The longest one call can take: talk, the last turn and reply, hang-up, note wait, slack."""
        talk = self.duration_s + 2 * (longest_turn_s + self.reply_timeout_s)
        return self.connect_timeout_s + talk + self.note_timeout_s + 30.0


def http_base(ws_url: str) -> str:
    return ws_url.rstrip("/").replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def http_status(url: str, timeout_s: float) -> int:
    """Status of a GET (the body is not read: a note is PHI and the load tester only needs to know it exists)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def check_reachable(ws_url: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when nothing answers at the gateway's address."""
    try:
        http_status(f"{http_base(ws_url)}/healthz", timeout_s)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise LoadTestError(
            f"cannot reach the gateway at {ws_url} ({reason}); start it with `iasovoice serve`, "
            "or pass --spawn to start one for this run"
        ) from None


class _Receiver:
    """Reads the socket: agent audio into the reply tracker, events into the call record."""

    def __init__(self, record: CallRecord, tracker: ReplyTracker, loop: asyncio.AbstractEventLoop) -> None:
        self.record = record
        self.tracker = tracker
        self.loop = loop
        self.done = asyncio.Event()

    async def run(self, ws: Any) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, str) and raw.startswith(AUDIO_PREFIX):
                    self.tracker.on_audio(self.loop.time())
                else:
                    self._on_event(raw)
        except ConnectionClosed:
            pass
        finally:
            self.record.closed_at = self.loop.time()
            self.record.close_code = ws.close_code
            self.done.set()

    def _on_event(self, raw: str | bytes) -> None:
        record = self.record
        try:
            message = json.loads(raw)
            kind = message.get("type")
        except (ValueError, AttributeError):
            record.add_error("the server sent a message that is not a JSON object")
            return
        if kind == "audio":
            self.tracker.on_audio(self.loop.time())
        elif kind == "clear":
            self.tracker.on_clear()
        elif kind == "note_ready":
            if record.stop_sent_at is not None:
                record.note_event_s = self.loop.time() - record.stop_sent_at
        elif kind == "call_ended":
            record.ended_reason = str(message.get("reason"))
        elif kind == "error":
            text = f"{message.get('code', 'error')}: {message.get('message', '')}"[:MAX_ERROR_TEXT]
            if len(record.server_errors) < 50:
                record.server_errors.append(text)
            record.add_error(f"server error message: {text}")
        # transcripts are ignored on purpose: their text is PHI and the load test does not need it


class SimulatedCall:
    def __init__(self, record: CallRecord, settings: LoadSettings, pool: AudioPool, token: str | None) -> None:
        self.record = record
        self.settings = settings
        self.pool = pool
        self.token = token

    def _target(self) -> str:
        s = self.settings
        target = f"{s.url.rstrip('/')}/connect/{self.record.call_id}?events=note_ready,ended" \
                 f"&sampleRate={self.pool.sample_rate}"
        return f"{target}&token={self.token}" if self.token else target

    async def run(self) -> None:
        """Connect, converse, hang up, check the note. Never raises: every failure lands in the record."""
        record = self.record
        loop = asyncio.get_running_loop()
        delay = record.scheduled_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        record.phase = "connecting"
        record.connect_started_at = loop.time()
        try:
            async with websockets.connect(
                self._target(), open_timeout=self.settings.connect_timeout_s, close_timeout=5,
                compression=None, max_size=None, ping_interval=None,
            ) as ws:
                record.connected_at = loop.time()
                record.connect_s = record.connected_at - record.connect_started_at
                record.phase = "active"
                await self._talk(ws, loop)
        except asyncio.CancelledError:
            raise  # the run records why it cancelled
        except ConnectionClosed:
            pass  # the receiver has recorded how it closed
        except Exception as error:  # noqa: BLE001 - refused, 401, timeout, bad handshake: all one error
            phase = "connect" if record.connected_at is None else "call"
            record.add_error(f"{phase} failed: {type(error).__name__}: {error}"[:MAX_ERROR_TEXT])
        finally:
            if record.connected_at is not None and record.closed_at is None:
                record.closed_at = loop.time()
            record.phase = "notes"
        if record.stop_sent_at is not None and self.settings.note_timeout_s > 0:
            await self._check_note(loop)
        record.phase = "done" if record.ok else "failed"

    async def _talk(self, ws: Any, loop: asyncio.AbstractEventLoop) -> None:
        record = self.record
        tracker = ReplyTracker(loop.time())
        record.tracker = tracker
        receiver = _Receiver(record, tracker, loop)
        receiving = asyncio.create_task(receiver.run(ws))
        try:
            finished = await self._stream(ws, loop, tracker, receiver)
            if finished:
                await self._hang_up(ws, loop, receiver)
                if record.close_code not in (None, 1000, 1001):
                    record.add_error(f"the server closed the call with code {record.close_code}")
            elif record.stop_sent_at is None:
                code = record.close_code
                record.add_error(
                    f"the server closed the call before hang-up (code {code}, reason {record.ended_reason})"
                )
        finally:
            receiving.cancel()

    async def _stream(self, ws: Any, loop: asyncio.AbstractEventLoop, tracker: ReplyTracker,
                      receiver: _Receiver) -> bool:
        """The line: silence until the greeting ends, then turns and silence until `duration_s`.

        Returns True when the caller is done talking (time to hang up), False when the socket closed.
        """
        s, pool, record = self.settings, self.pool, self.record
        silence = pool.silence
        started = deadline = loop.time()
        hard_stop = started + s.duration_s + 2 * (pool.longest_turn_s + s.reply_timeout_s)
        next_turn = record.index % len(pool.turns)  # calls start at different turns: no lock step
        turns_done = 0
        messages: tuple[str, ...] = ()
        speech_end = 0
        position = 0
        speaking = False
        waiting_since = started
        while not receiver.done.is_set():
            now = loop.time()
            lag = now - deadline
            record.max_send_lag_s = max(record.max_send_lag_s, lag)
            if lag > FRAME_S:
                record.late_sends += 1
                if lag > MAX_CATCH_UP_S:
                    deadline = now
            if speaking:
                if position == speech_end:
                    tracker.caller_turn_ended(deadline, turns_done, speech_end * FRAME_S)
                    turns_done += 1
                    waiting_since = deadline
                if position < len(messages):
                    message = messages[position]
                    position += 1
                else:
                    speaking = False
                    message = silence
            else:
                reply = tracker.current
                answered = reply.first_audio_at is not None
                over = answered and now - tracker.last_audio_at > s.reply_quiet_s
                if not answered and now - waiting_since > s.reply_timeout_s:
                    reply.timed_out = True  # a gateway configured without a greeting is not an error
                    if reply.kind == "turn":
                        record.add_error(f"no reply to turn {reply.turn_index} within {s.reply_timeout_s:.0f} s")
                    over = True
                if over or now > hard_stop:
                    if (turns_done and now - started >= s.duration_s) or turns_done >= MAX_TURNS_PER_CALL \
                            or now > hard_stop:
                        return True
                    turn = pool.turns[next_turn]
                    next_turn = (next_turn + 1) % len(pool.turns)
                    messages, speech_end, position, speaking = turn.messages, turn.speech_frames, 1, True
                    message = messages[0]
                else:
                    message = silence
            try:
                await ws.send(message)
            except ConnectionClosed:
                if record.stop_sent_at is None:
                    record.send_failures += 1
                return False
            record.frames_sent += 1
            deadline += FRAME_S
            delay = deadline - loop.time()
            await asyncio.sleep(max(0, delay))
        return False

    async def _hang_up(self, ws: Any, loop: asyncio.AbstractEventLoop, receiver: _Receiver) -> None:
        """Stop, then keep the socket until the server ends the call (it closes after storing the note)."""
        record = self.record
        record.stop_sent_at = loop.time()
        record.phase = "hanging up"
        try:
            await ws.send(STOP_MESSAGE)
        except ConnectionClosed:
            return
        wait_s = self.settings.note_timeout_s or 5.0
        try:
            await asyncio.wait_for(receiver.done.wait(), wait_s)
        except TimeoutError:
            if self.settings.note_timeout_s:
                record.add_error(f"the server did not end the call within {wait_s:.0f} s of hang-up")

    async def _check_note(self, loop: asyncio.AbstractEventLoop) -> None:
        """Poll GET /calls/{id}/note (bounded by time and count) and record stop → note available."""
        record, s = self.record, self.settings
        assert record.stop_sent_at is not None
        query = f"?token={self.token}" if self.token else ""
        url = f"{http_base(s.url)}/calls/{record.call_id}/note{query}"
        deadline = record.stop_sent_at + s.note_timeout_s
        for _ in range(int(s.note_timeout_s / NOTE_POLL_INTERVAL_S) + 2):
            remaining = deadline - loop.time()
            try:
                status = await asyncio.to_thread(http_status, url, max(1.0, min(10.0, remaining)))
            except (urllib.error.URLError, OSError) as error:
                status = 0
                log.debug("note poll for %s failed: %s", record.call_id, error)
            if status == 200:
                record.note_s = loop.time() - record.stop_sent_at
                return
            if status in (400, 401, 403):
                record.add_error(f"GET note refused with HTTP {status}")
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(NOTE_POLL_INTERVAL_S, remaining))
        record.add_error(f"no note available within {s.note_timeout_s:.0f} s of hang-up")


class LoadRun:
    """All calls of one run. The display reads `records` while the run mutates them (one loop, no locks)."""

    def __init__(self, settings: LoadSettings, pool: AudioPool, token_for: TokenFor) -> None:
        settings.validate()
        self.settings = settings
        self.pool = pool
        self.token_for = token_for
        self.records = [CallRecord(i, settings.call_id(i), scheduled_at=0.0) for i in range(settings.calls)]
        self.t0 = 0.0
        self.finished_at: float | None = None
        self.aborted = 0

    @staticmethod
    def new_run_id() -> str:
        return uuid.uuid4().hex[:8]

    async def run(self, on_tick: Callable[[], None] | None = None, tick_s: float = 0.5) -> None:
        """Start call i at i * ramp / N seconds (linear ramp) and wait for all, within a hard bound."""
        loop = asyncio.get_running_loop()
        s = self.settings
        self.t0 = loop.time() + 0.1
        for record in self.records:
            record.scheduled_at = self.t0 + s.ramp_s * record.index / s.calls
        tasks = [
            asyncio.create_task(SimulatedCall(r, s, self.pool, self.token_for(r.call_id)).run())
            for r in self.records
        ]
        ticker = asyncio.create_task(self._tick(on_tick, tick_s)) if on_tick else None
        bound = s.ramp_s + s.call_bound_s(self.pool.longest_turn_s)
        try:
            _, pending = await asyncio.wait(tasks, timeout=bound)
            for task in pending:
                task.cancel()
            self.aborted = len(pending)
            if pending:
                await asyncio.wait(pending, timeout=10)
        finally:
            for task in tasks:
                task.cancel()
            self.finished_at = loop.time()
            if ticker is not None:
                ticker.cancel()
            for record in self.records:
                if record.phase not in ("done", "failed"):
                    record.phase = "failed"
                    record.add_error("aborted before the call finished")
            if on_tick:
                on_tick()

    @staticmethod
    async def _tick(on_tick: Callable[[], None], tick_s: float) -> None:
        while True:
            await asyncio.sleep(tick_s)
            try:
                on_tick()
            except Exception:
                log.exception("progress display failed")
