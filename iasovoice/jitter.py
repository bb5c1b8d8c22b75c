"""Re-orders inbound caller frames by gateway sequence number and conceals the ones that never arrive.

Async Ray calls from the gateway to a call actor are not ordered, and a frame can be lost when the gateway
sheds load; ASR and the VAD need a gap-free, in-order stream with real-time pacing, so a missing frame is
waited for at most ``max_wait_s`` (measured from the arrival of the first frame after the gap) and then
replaced (packet-loss concealment).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from iasovoice.errors import AudioFormatError

# Seqs concealed recently, remembered so a frame arriving after its slot was concealed counts as late rather
# than as a duplicate; bounded so memory stays constant over a long call.
_CONCEALED_MEMORY = 1024


@dataclass(frozen=True)
class PlayoutFrame:
    seq: int
    samples: np.ndarray
    concealed: bool


@dataclass
class JitterStats:
    """Counters for monitoring; ``late`` high means ``max_wait_s`` is too short for the actor's scheduling.

    received counts every push (also duplicates and late ones); resyncs counts gaps too long to conceal
    (more than ``max_buffered_frames``), which are skipped instead.
    """

    received: int = 0
    duplicates: int = 0
    late: int = 0
    concealed: int = 0
    reordered: int = 0
    max_depth: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Per-call reorder buffer; push() from the message handler, pop_ready() on each processing tick."""

    def __init__(self, frame_samples: int, max_wait_s: float = 0.06, max_buffered_frames: int = 500) -> None:
        if frame_samples <= 0 or max_wait_s < 0 or max_buffered_frames <= 0:
            raise ValueError("frame_samples and max_buffered_frames must be positive, max_wait_s >= 0")
        self.frame_samples = frame_samples
        self.max_wait_s = max_wait_s
        self.max_buffered_frames = max_buffered_frames
        self._pending: dict[int, tuple[np.ndarray, float]] = {}
        self._heap: list[int] = []  # seqs in _pending; all >= _next, so the min is always the next to play
        self._next: int | None = None
        self._max_seen: int | None = None
        self._ready: deque[PlayoutFrame] = deque()  # frames released by overflow in push()
        self._last_real: np.ndarray | None = None
        self._recent_concealed: set[int] = set()
        self._recent_order: deque[int] = deque()
        # Fade the repeated frame out so concealment does not end in a click before the silence.
        self._fade = np.linspace(0.5, 0.0, frame_samples, dtype=np.float32)
        self._stats = JitterStats()

    @property
    def stats(self) -> JitterStats:
        return self._stats

    @property
    def depth(self) -> int:
        """Frames waiting for a missing predecessor (bounded by max_buffered_frames)."""
        return len(self._pending)

    def push(self, seq: int, frame: np.ndarray, now: float) -> None:
        if frame.shape != (self.frame_samples,):
            raise AudioFormatError(
                f"jitter buffer frame must have {self.frame_samples} samples, got {frame.shape}"
            )
        st = self._stats
        st.received += 1
        if self._next is None:
            self._next = seq
        if seq < self._next:
            if seq in self._recent_concealed:
                st.late += 1
            else:
                st.duplicates += 1
            return
        if seq in self._pending:
            st.duplicates += 1
            return
        if self._max_seen is not None and seq < self._max_seen:
            st.reordered += 1
        self._max_seen = seq if self._max_seen is None else max(self._max_seen, seq)
        self._pending[seq] = (frame, now)
        heapq.heappush(self._heap, seq)
        st.max_depth = max(st.max_depth, len(self._pending))
        while len(self._pending) > self.max_buffered_frames:
            self._ready.extend(self._conceal_gap())
            self._ready.extend(self._drain_contiguous())

    def pop_ready(self, now: float) -> list[PlayoutFrame]:
        out = list(self._ready)
        self._ready.clear()
        while True:
            out.extend(self._drain_contiguous())
            if not self._heap:
                return out
            _, arrived = self._pending[self._heap[0]]
            if now - arrived <= self.max_wait_s:
                return out
            out.extend(self._conceal_gap())

    def flush(self, now: float) -> list[PlayoutFrame]:
        """Hang-up: release everything, concealing every gap without waiting."""
        out = list(self._ready)
        self._ready.clear()
        while True:
            out.extend(self._drain_contiguous())
            if not self._heap:
                return out
            out.extend(self._conceal_gap())

    def _drain_contiguous(self) -> list[PlayoutFrame]:
        out: list[PlayoutFrame] = []
        while self._heap and self._heap[0] == self._next:
            seq = heapq.heappop(self._heap)
            frame, _ = self._pending.pop(seq)
            out.append(PlayoutFrame(seq, frame, False))
            self._last_real = frame
            self._next = seq + 1
        return out

    def _conceal_gap(self) -> list[PlayoutFrame]:
        """Fill ``_next`` up to the earliest buffered frame: a faded repeat of the last real frame, then silence."""
        assert self._next is not None and self._heap
        target = self._heap[0]
        if target - self._next > self.max_buffered_frames:
            # A jump this long is a stream discontinuity, not loss: seconds of made-up audio would only
            # confuse ASR, so skip to the new position.
            self._stats.resyncs += 1
            self._next, self._last_real = target, None
            return []
        out: list[PlayoutFrame] = []
        for seq in range(self._next, target):
            if self._last_real is not None:
                samples = (self._last_real * self._fade).astype(np.int16)
                self._last_real = None
            else:
                samples = np.zeros(self.frame_samples, dtype=np.int16)
            out.append(PlayoutFrame(seq, samples, True))
            self._remember_concealed(seq)
        self._stats.concealed += len(out)
        self._next = target
        return out

    def _remember_concealed(self, seq: int) -> None:
        self._recent_concealed.add(seq)
        self._recent_order.append(seq)
        if len(self._recent_order) > _CONCEALED_MEMORY:
            self._recent_concealed.discard(self._recent_order.popleft())
