"""Agent audio playout: releases reply frames at playback pace so a barge-in can really cut speech off.

Only `lead_ms` of audio is ever handed to the telephony side ahead of real time. Everything else waits
here, where `clear()` can drop it in one step; what was already released is dropped by the client on
the `clear` message.

Safety scripts are queued `protected`: `clear()` never drops them, and no `clear` is due while one is
sounding, so an emergency message is heard whole whatever the caller does. The playout also knows when
each reply's last frame finishes playing, which is when a "message given" flag may be set, and how many
of a reply's frames had started playing when a barge-in cut it: the transcript keeps what was heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class _Queued:
    reply_id: str
    frame: np.ndarray
    protected: bool = False


class Playout:
    def __init__(self, frame_samples: int, frame_ms: int = 20, lead_ms: int = 120) -> None:
        self._frame_samples = frame_samples
        self._frame_s = frame_ms / 1000.0
        self._lead_s = lead_ms / 1000.0
        self._queue: deque[_Queued] = deque()
        self._released_until = 0.0  # wall time at which the last released frame finishes playing
        self._protected_until = 0.0  # wall time at which the last released protected frame finishes
        self._finish_at: dict[str, float] = {}  # reply id -> when its last released frame finishes
        self._released: dict[str, int] = {}  # reply id -> frames released to the client
        # (reply id, playback start) of the frames released but perhaps not yet started: at most `lead`.
        self._ahead: deque[tuple[str, float]] = deque()
        self.frames_released = 0

    def enqueue(self, reply_id: str, samples: np.ndarray, protected: bool = False) -> int:
        """Queue audio for a reply, cut into whole frames (the tail is padded with silence); the frame count."""
        n = self._frame_samples
        pad = (-len(samples)) % n
        if pad:
            samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
        for start in range(0, len(samples), n):
            self._queue.append(_Queued(reply_id, samples[start:start + n], protected))
        return len(samples) // n

    def release(self, now: float) -> list[np.ndarray]:
        """Frames whose playback starts before `now + lead`; starts the clock afresh after idling."""
        self._released_until = max(self._released_until, now)
        frames: list[np.ndarray] = []
        while self._ahead and self._ahead[0][1] < now:
            self._ahead.popleft()
        while self._queue and self._released_until < now + self._lead_s:
            item = self._queue.popleft()
            frames.append(item.frame)
            self._ahead.append((item.reply_id, self._released_until))
            self._released[item.reply_id] = self._released.get(item.reply_id, 0) + 1
            self._released_until += self._frame_s
            self._finish_at[item.reply_id] = self._released_until
            if item.protected:
                self._protected_until = self._released_until
        self.frames_released += len(frames)
        return frames

    def is_playing(self, now: float) -> bool:
        """True while released audio is still sounding or more is queued."""
        return bool(self._queue) or self._released_until > now

    def playing_reply(self) -> str | None:
        return self._queue[0].reply_id if self._queue else None

    def has_queued(self, reply_id: str) -> bool:
        return any(item.reply_id == reply_id for item in self._queue)

    def played_out(self, reply_id: str, now: float) -> bool:
        """True once every frame queued for `reply_id` was released and has finished sounding."""
        finish = self._finish_at.get(reply_id)
        return finish is not None and now >= finish and not self.has_queued(reply_id)

    def frames_heard(self, reply_id: str, now: float) -> int:
        """How many of the reply's frames had started playing at ``now``.

        Frames released but due to start later sit in the client's buffer, which `clear` empties: the
        caller never hears them.
        """
        not_started = sum(1 for rid, start in self._ahead if rid == reply_id and start >= now)
        return self._released.get(reply_id, 0) - not_started

    def clear(self, now: float) -> bool:
        """Drop queued audio except protected frames; True if the client must be sent `clear`.

        While a protected frame is sounding or still queued the answer is False: the client's buffer
        holds safety audio that must play, and the unprotected audio dropped here never reached it.
        """
        sounding = self._released_until > now
        dropped = any(not item.protected for item in self._queue)
        self._queue = deque(item for item in self._queue if item.protected)
        if self._queue or self._protected_until > now:
            return False
        self._released_until = min(self._released_until, now)
        return sounding or dropped

    @property
    def queued_frames(self) -> int:
        return len(self._queue)
