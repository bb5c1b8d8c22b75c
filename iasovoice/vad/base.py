"""The interface every voice-activity detector implements, so the turn-taking logic can swap Silero for a
deterministic energy detector in tests and stand-in benchmarks."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Stateful per-call detector fed one 20 ms int16 frame at a time."""

    sample_rate: int

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability (0..1) of the most recently analysed audio."""
        ...

    def reset(self) -> None:
        """Forget all state (e.g. after barge-in handling or between calls)."""
        ...
