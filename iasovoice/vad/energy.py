"""Deterministic energy detector: no model, bit-for-bit reproducible, for tests and stand-in benchmarks."""

from __future__ import annotations

import math

import numpy as np

from iasovoice.audio.pcm import rms_dbfs
from iasovoice.errors import AudioFormatError


class EnergyVAD:
    """Maps a frame's RMS level to a probability with a logistic curve centred on ``threshold_dbfs``.

    A soft curve (rather than a hard 0/1) keeps the same hysteresis thresholds usable for both detectors.
    """

    def __init__(self, sample_rate: int, threshold_dbfs: float = -45.0, softness_db: float = 3.0) -> None:
        if sample_rate <= 0:
            raise AudioFormatError(f"invalid sample rate {sample_rate}")
        if softness_db <= 0:
            raise ValueError("softness_db must be positive")
        self.sample_rate = sample_rate
        self.threshold_dbfs = threshold_dbfs
        self.softness_db = softness_db

    def __call__(self, frame: np.ndarray) -> float:
        z = (rms_dbfs(frame) - self.threshold_dbfs) / self.softness_db
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def reset(self) -> None:
        """Stateless: nothing to forget."""
