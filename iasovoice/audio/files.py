"""Audio file I/O for tests, benchmarks and the CLI client (never on the live call path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from iasovoice.audio.pcm import float32_to_int16
from iasovoice.audio.resample import resample
from iasovoice.errors import AudioFormatError


def load_audio(path: str | Path, target_rate: int) -> np.ndarray:
    """Read wav/flac of any bit depth and channel count as mono int16 at ``target_rate``.

    Decoding goes through float32 so 24/32-bit files keep their precision until the final rounding, and
    channels are averaged (not just the left one taken) so a speaker panned to one side is not lost.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file not found: {p}")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"cannot decode audio file {p}: {exc}") from exc
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return float32_to_int16(resample(np.ascontiguousarray(mono), int(rate), target_rate))


def write_wav(path: str | Path, samples_int16: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM mono WAV, the format every telephony and ASR tool accepts."""
    a = np.asarray(samples_int16)
    if a.ndim != 1:
        raise AudioFormatError(f"write_wav expects mono 1-D samples, got shape {a.shape}")
    if a.dtype != np.int16:
        a = float32_to_int16(a) if a.dtype.kind == "f" else a.astype(np.int16)
    sf.write(str(path), a, sample_rate, subtype="PCM_16", format="WAV")
