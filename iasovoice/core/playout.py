"""Agent audio playout: releases reply frames at playback pace so a barge-in can really cut speech off.

Only `lead_ms` of audio is ever handed to the telephony side ahead of real time. Everything else waits
here, where `clear()` can drop it in one step; what was already released is dropped by the client on
the `clear` message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class _Queued:
    reply_id: str
    frame: np.ndarray


class Playout:
    def __init__(self, frame_samples: int, frame_ms: int = 20, lead_ms: int = 120) -> None:
        self._frame_samples = frame_samples
        self._frame_s = frame_ms / 1000.0
        self._lead_s = lead_ms / 1000.0
        self._queue: deque[_Queued] = deque()
        self._released_until = 0.0  # wall time at which the last released frame finishes playing
        self._partial = np.zeros(0, dtype=np.int16)
        self.frames_released = 0

    def enqueue(self, reply_id: str, samples: np.ndarray) -> None:
        """Queue audio for a reply, cut into whole frames (the tail is padded with silence)."""
        n = self._frame_samples
        pad = (-len(samples)) % n
        if pad:
            samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
        for start in range(0, len(samples), n):
            self._queue.append(_Queued(reply_id, samples[start:start + n]))

    def release(self, now: float) -> list[np.ndarray]:
        """Frames whose playback starts before `now + lead`; starts the clock afresh after idling."""
        self._released_until = max(self._released_until, now)
        frames: list[np.ndarray] = []
        while self._queue and self._released_until < now + self._lead_s:
            frames.append(self._queue.popleft().frame)
            self._released_until += self._frame_s
        self.frames_released += len(frames)
        return frames

    def is_playing(self, now: float) -> bool:
        """True while released audio is still sounding or more is queued."""
        return bool(self._queue) or self._released_until > now

    def playing_reply(self) -> str | None:
        return self._queue[0].reply_id if self._queue else None

    def clear(self, now: float) -> bool:
        """Drop queued audio; True if anything was queued or still sounding (so `clear` must be sent)."""
        was_playing = self.is_playing(now)
        self._queue.clear()
        self._released_until = min(self._released_until, now)
        return was_playing

    @property
    def queued_frames(self) -> int:
        return len(self._queue)
