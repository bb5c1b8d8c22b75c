"""Turn detection: per-frame speech probabilities → caller utterances (endpointing) and speech onsets.

Decisions are made in audio time (frames), not wall-clock time, so the same audio always segments the
same way however fast it arrives (a burst of buffered frames, a slow gateway). The onset is reported as
soon as `start_speech_ms` of speech has accumulated; that is the moment barge-in acts on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np


class TurnState(Enum):
    SILENCE = "silence"
    SPEECH = "speech"


@dataclass(frozen=True)
class SpeechOnset:
    """The caller started talking (enough consecutive speech frames)."""

    frame_index: int


@dataclass(frozen=True)
class Utterance:
    """A finished caller utterance; `partial` when cut by hang-up rather than by silence."""

    samples: np.ndarray
    start_frame: int
    end_frame: int
    partial: bool = False


TurnEvent = SpeechOnset | Utterance


@dataclass(frozen=True)
class TurnSettings:
    frame_ms: int = 20
    threshold: float = 0.5
    start_speech_ms: int = 120
    end_silence_ms: int = 700
    pre_roll_ms: int = 200
    max_utterance_ms: int = 25_000
    min_utterance_ms: int = 250


class TurnDetector:
    """Hysteresis endpointer: speech must persist to open a turn and silence must persist to close it."""

    def __init__(self, settings: TurnSettings) -> None:
        self._s = settings
        def frames(ms: int) -> int:
            return max(1, ms // settings.frame_ms)

        self._start_frames = frames(settings.start_speech_ms)
        self._end_frames = frames(settings.end_silence_ms)
        self._max_frames = frames(settings.max_utterance_ms)
        self._min_frames = frames(settings.min_utterance_ms)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=frames(settings.pre_roll_ms) + self._start_frames)
        self._state = TurnState.SILENCE
        self._speech_run = 0
        self._silence_run = 0
        self._frames: list[np.ndarray] = []
        self._start_frame = 0
        self._voiced = 0
        self._frame_index = -1

    @property
    def state(self) -> TurnState:
        return self._state

    @property
    def in_speech(self) -> bool:
        return self._state is TurnState.SPEECH

    def process(self, frame: np.ndarray, speech_probability: float) -> list[TurnEvent]:
        self._frame_index += 1
        is_speech = speech_probability >= self._s.threshold
        if self._state is TurnState.SILENCE:
            return self._in_silence(frame, is_speech)
        return self._in_speech(frame, is_speech)

    def _in_silence(self, frame: np.ndarray, is_speech: bool) -> list[TurnEvent]:
        self._pre_roll.append(frame)
        self._speech_run = self._speech_run + 1 if is_speech else 0
        if self._speech_run < self._start_frames:
            return []
        self._state = TurnState.SPEECH
        self._frames = list(self._pre_roll)
        self._pre_roll.clear()
        self._start_frame = self._frame_index - len(self._frames) + 1
        self._silence_run = 0
        self._voiced = self._speech_run
        return [SpeechOnset(self._frame_index)]

    def _in_speech(self, frame: np.ndarray, is_speech: bool) -> list[TurnEvent]:
        self._frames.append(frame)
        self._voiced += int(is_speech)
        self._silence_run = 0 if is_speech else self._silence_run + 1
        if self._silence_run >= self._end_frames:
            # Keep a little trailing silence (Whisper likes a clean ending) but not all of it.
            keep = len(self._frames) - self._silence_run + min(self._silence_run, 10)
            return self._close(keep, partial=False)
        if len(self._frames) >= self._max_frames:
            return self._close(len(self._frames), partial=False)
        return []

    def _close(self, keep: int, partial: bool) -> list[TurnEvent]:
        frames = self._frames[:keep]
        self._frames = []
        self._state = TurnState.SILENCE
        self._speech_run = 0
        self._silence_run = 0
        voiced, self._voiced = self._voiced, 0
        if not frames or (not partial and voiced < self._min_frames):
            return []
        samples = np.concatenate(frames)
        end = self._start_frame + len(frames) - 1
        return [Utterance(samples, self._start_frame, end, partial=partial)]

    def flush(self) -> list[TurnEvent]:
        """Hang-up: hand over whatever speech is open, even mid-word, so it still reaches the note."""
        if self._state is TurnState.SPEECH:
            return self._close(len(self._frames), partial=True)
        if self._speech_run > 0 and self._pre_roll:
            # Speech had begun but not yet for long enough to open a turn; do not lose it.
            self._frames = list(self._pre_roll)
            self._start_frame = self._frame_index - len(self._frames) + 1
            self._voiced = self._speech_run
            self._pre_roll.clear()
            return self._close(len(self._frames), partial=True)
        return []
