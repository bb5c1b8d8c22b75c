"""Sample-rate conversion with libsoxr (band-limited, so 16 kHz -> 8 kHz does not alias into the telephone band)."""

from __future__ import annotations

import numpy as np
import soxr

from iasovoice.errors import AudioFormatError

_DTYPES = (np.dtype(np.int16), np.dtype(np.float32), np.dtype(np.float64))


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """One-shot resample that keeps the input dtype (int16, float32 or float64).

    One-shot (not streaming) is right for whole utterances and TTS output; per-frame streaming would need a
    ``soxr.ResampleStream`` per call to avoid edge artefacts at every frame boundary.
    """
    a = np.asarray(samples)
    if a.dtype not in _DTYPES:
        raise AudioFormatError(f"resample supports int16/float32/float64 samples, got {a.dtype}")
    if from_rate <= 0 or to_rate <= 0:
        raise AudioFormatError(f"invalid sample rates {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return a
    if a.shape[0] == 0:
        return a.copy()
    return soxr.resample(a, from_rate, to_rate)
