"""What the load tester measures: per-reply audio timing, per-call records, and the run's summary.

Pure data and arithmetic (no I/O, no clock), so every rule here is unit-tested on constructed
timelines. Times are `time.monotonic()` seconds; records converted to JSON are relative to the run's
start so a results file reads as a timeline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

FRAME_S = 0.02  # every agent audio frame on the wire carries 20 ms of speech
UNDERRUN_TOLERANCE_S = 0.06  # lateness beyond the 20 ms pacing that a caller would hear as a gap


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), None for no data.

    Kept dependency-free because the live display calls it twice a second on a growing list.
    """
    if not values:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: list[float]) -> dict[str, float | int | None]:
    """count/p50/p95/p99/max/mean of a list, for the summary and results.json."""
    return {
        "count": len(values),
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "p99": _round(percentile(values, 99)),
        "max": _round(max(values)) if values else None,
        "mean": _round(sum(values) / len(values)) if values else None,
    }


@dataclass
class ReplyRecord:
    """One agent reply: the greeting, or the answer to one caller turn.

    `opened_at` is when the reply became due: the end of the caller's speech for a turn (so
    `latency_s` is voice-to-voice), the websocket open for the greeting. Underruns follow the caller's
    ear: each frame holds 20 ms of playback, so a frame is late when it arrives after everything
    received before it would have finished playing; more than `UNDERRUN_TOLERANCE_S` late is an
    audible gap. Frames that come evenly every 20 ms are never late; a burst sent ahead of time buys
    later frames the same slack a playback buffer would.
    """

    kind: str  # "greeting" | "turn"
    opened_at: float
    turn_index: int | None = None  # position in the call's caller turns (None for the greeting)
    caller_audio_s: float = 0.0  # length of the caller speech this reply answers
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    frames: int = 0
    underruns: int = 0
    max_late_s: float = 0.0
    clears: int = 0
    timed_out: bool = False
    _playout_end: float | None = field(default=None, repr=False)

    @property
    def latency_s(self) -> float | None:
        return None if self.first_audio_at is None else self.first_audio_at - self.opened_at

    def add_frame(self, at: float, frame_s: float = FRAME_S, tolerance_s: float = UNDERRUN_TOLERANCE_S) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = at
        if self._playout_end is not None:
            late = at - self._playout_end
            self.max_late_s = max(self.max_late_s, late)
            if late > tolerance_s:
                self.underruns += 1
        self._playout_end = max(self._playout_end or at, at) + frame_s
        self.last_audio_at = at
        self.frames += 1

    def clear(self) -> None:
        """Barge-in: playback was dropped, so the next frame starts afresh (its wait is not a gap)."""
        self.clears += 1
        self._playout_end = None

    def to_dict(self, t0: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "turn_index": self.turn_index,
            "opened_s": round(self.opened_at - t0, 4),
            "caller_audio_s": round(self.caller_audio_s, 3),
            "latency_s": _round(self.latency_s),
            "reply_audio_s": round(self.frames * FRAME_S, 3),
            "frames": self.frames,
            "underruns": self.underruns,
            "max_late_s": round(self.max_late_s, 4),
            "clears": self.clears,
            "timed_out": self.timed_out,
        }


class ReplyTracker:
    """Attributes every agent audio frame to the reply it belongs to.

    Reply k owns the frames from the end of caller turn k until the end of caller turn k+1, so audio
    that trails into the caller's next sentence still counts (as a gap) against the reply it belongs to,
    and the next reply's latency starts from the caller's next end of speech.
    """

    def __init__(self, opened_at: float) -> None:
        self.replies: list[ReplyRecord] = [ReplyRecord("greeting", opened_at)]
        self.last_audio_at: float = 0.0
        self.frames: int = 0

    @property
    def current(self) -> ReplyRecord:
        return self.replies[-1]

    def caller_turn_ended(self, at: float, turn_index: int, caller_audio_s: float) -> ReplyRecord:
        reply = ReplyRecord("turn", at, turn_index=turn_index, caller_audio_s=caller_audio_s)
        self.replies.append(reply)
        return reply

    def on_audio(self, at: float) -> None:
        self.replies[-1].add_frame(at)
        self.last_audio_at = at
        self.frames += 1

    def on_clear(self) -> None:
        self.replies[-1].clear()


@dataclass
class CallRecord:
    """Everything measured about one simulated call; `errors` empty means the call succeeded."""

    index: int
    call_id: str
    scheduled_at: float
    phase: str = "scheduled"  # scheduled, connecting, active, hanging up, notes, done, failed
    connect_started_at: float | None = None
    connected_at: float | None = None
    closed_at: float | None = None
    stop_sent_at: float | None = None
    connect_s: float | None = None
    tracker: ReplyTracker | None = None
    frames_sent: int = 0
    send_failures: int = 0  # frames the client could not send (socket gone) before hanging up
    late_sends: int = 0  # frames the load generator itself sent > 20 ms after their deadline
    max_send_lag_s: float = 0.0
    server_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    note_event_s: float | None = None  # stop → `note_ready` message
    note_s: float | None = None  # stop → first 200 from GET /calls/{id}/note
    ended_reason: str | None = None
    close_code: int | None = None
    server_frames_in: int | None = None  # from the gateway's log when it is available
    server_frames_out: int | None = None

    @property
    def ok(self) -> bool:
        return self.connected_at is not None and not self.errors

    @property
    def replies(self) -> list[ReplyRecord]:
        return self.tracker.replies if self.tracker is not None else []

    @property
    def turn_replies(self) -> list[ReplyRecord]:
        return [r for r in self.replies if r.kind == "turn"]

    @property
    def agent_frames(self) -> int:
        return self.tracker.frames if self.tracker is not None else 0

    @property
    def frames_lost_in(self) -> int | None:
        """Caller frames sent that the gateway did not count as received (needs its log)."""
        return None if self.server_frames_in is None else max(0, self.frames_sent - self.server_frames_in)

    @property
    def frames_lost_out(self) -> int | None:
        """Agent frames the gateway sent that never arrived here (needs its log)."""
        return None if self.server_frames_out is None else max(0, self.server_frames_out - self.agent_frames)

    def add_error(self, message: str) -> None:
        if len(self.errors) < 50:  # bounded: a broken call must not grow without limit
            self.errors.append(message)

    def to_dict(self, t0: float) -> dict[str, Any]:
        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - t0, 4)

        greeting = next((r for r in self.replies if r.kind == "greeting"), None)
        return {
            "index": self.index,
            "call_id": self.call_id,
            "ok": self.ok,
            "phase": self.phase,
            "scheduled_s": rel(self.scheduled_at),
            "connected_s": rel(self.connected_at),
            "closed_s": rel(self.closed_at),
            "stop_sent_s": rel(self.stop_sent_at),
            "connect_s": _round(self.connect_s),
            "greeting_latency_s": _round(greeting.latency_s) if greeting else None,
            "frames_sent": self.frames_sent,
            "send_failures": self.send_failures,
            "late_sends": self.late_sends,
            "max_send_lag_s": round(self.max_send_lag_s, 4),
            "agent_frames": self.agent_frames,
            "server_frames_in": self.server_frames_in,
            "server_frames_out": self.server_frames_out,
            "frames_lost_in": self.frames_lost_in,
            "frames_lost_out": self.frames_lost_out,
            "server_errors": self.server_errors,
            "errors": self.errors,
            "note_event_s": _round(self.note_event_s),
            "note_s": _round(self.note_s),
            "ended_reason": self.ended_reason,
            "close_code": self.close_code,
            "replies": [r.to_dict(t0) for r in self.replies],
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def voice_to_voice(calls: list[CallRecord]) -> list[float]:
    return [r.latency_s for c in calls for r in c.turn_replies if r.latency_s is not None]


def concurrency_timeline(calls: list[CallRecord], t0: float, talking: bool = False) -> list[tuple[float, int]]:
    """(seconds since start, calls connected) at every connect and close, for the plot and the peak.

    `talking` ends each call at its hang-up instead of its close: the socket stays open while the note
    is written, which is load of another kind (no audio), so the plot shows both.
    """
    edges: list[tuple[float, int]] = []
    for call in calls:
        if call.connected_at is None:
            continue
        edges.append((call.connected_at - t0, 1))
        end = call.closed_at
        if talking and call.stop_sent_at is not None:
            end = call.stop_sent_at if end is None else min(end, call.stop_sent_at)
        if end is not None:
            edges.append((end - t0, -1))
    edges.sort(key=lambda e: (e[0], e[1]))  # a close and a connect at one instant: close first
    active = 0
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    for at, delta in edges:
        active += delta
        timeline.append((round(at, 4), active))
    return timeline


def summarize(calls: list[CallRecord], t0: float) -> dict[str, Any]:
    """The run in numbers: what `results.json` leads with and the summary table prints."""
    turns = [r for c in calls for r in c.turn_replies]
    replies = [r for c in calls for r in c.replies]
    with_note = [c for c in calls if c.note_s is not None]
    logged = [c for c in calls if c.server_frames_in is not None]
    timeline = concurrency_timeline(calls, t0)
    greetings = [r.latency_s for r in replies if r.kind == "greeting" and r.latency_s is not None]
    return {
        "calls": {
            "total": len(calls),
            "connected": sum(c.connected_at is not None for c in calls),
            "ok": sum(c.ok for c in calls),
            "failed": sum(not c.ok for c in calls),
            "peak_concurrent": max((n for _, n in timeline), default=0),
            "peak_talking": max((n for _, n in concurrency_timeline(calls, t0, talking=True)), default=0),
        },
        "connect_s": distribution([c.connect_s for c in calls if c.connect_s is not None]),
        "greeting_latency_s": distribution(greetings),
        "voice_to_voice_s": distribution(voice_to_voice(calls)),
        "greetings_missing": sum(r.kind == "greeting" and r.timed_out for r in replies),
        "turns": {
            "total": len(turns),
            "answered": sum(r.first_audio_at is not None for r in turns),
            "timed_out": sum(r.timed_out for r in turns),
        },
        "audio": {
            "agent_frames": sum(c.agent_frames for c in calls),
            "replies": len(replies),
            "underruns": sum(r.underruns for r in replies),
            "replies_with_underruns": sum(r.underruns > 0 for r in replies),
            "max_late_s": round(max((r.max_late_s for r in replies), default=0.0), 4),
            "clears": sum(r.clears for r in replies),
        },
        "frames": {
            "sent": sum(c.frames_sent for c in calls),
            "send_failures": sum(c.send_failures for c in calls),
            "calls_with_server_counts": len(logged),
            "lost_in": sum(c.frames_lost_in or 0 for c in logged) if logged else None,
            "lost_out": sum(c.frames_lost_out or 0 for c in logged) if logged else None,
        },
        "load_generator": {
            "late_sends": sum(c.late_sends for c in calls),
            "max_send_lag_s": round(max((c.max_send_lag_s for c in calls), default=0.0), 4),
        },
        "errors": {
            "calls_with_errors": sum(bool(c.errors) for c in calls),
            "server_error_messages": sum(len(c.server_errors) for c in calls),
            "first": [f"{c.call_id}: {c.errors[0]}" for c in calls if c.errors][:10],
        },
        "notes": {
            "available": len(with_note),
            "missing": len(calls) - len(with_note),
            "time_to_note_s": distribution([c.note_s for c in with_note if c.note_s is not None]),
        },
    }


# `gateway/server.py` logs one line per finished socket; with it, frames in/out are exact per call.
_SOCKET_DONE = re.compile(
    r"call (?P<call_id>\S+): socket done \([^)]*\), (?P<fin>\d+) frames in, (?P<fout>\d+) out"
)


def parse_gateway_log(text: str) -> dict[str, tuple[int, int]]:
    """call id → (frames received, frames sent) as the gateway counted them; summed over reconnects."""
    counts: dict[str, tuple[int, int]] = {}
    for match in _SOCKET_DONE.finditer(text):
        fin, fout = counts.get(match["call_id"], (0, 0))
        counts[match["call_id"]] = (fin + int(match["fin"]), fout + int(match["fout"]))
    return counts
