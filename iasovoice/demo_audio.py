"""The real recordings shipped in data/audio, and cutting a recording into caller turns at its pauses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iasovoice.audio.files import load_audio
from iasovoice.audio.pcm import frame_samples, rms_dbfs

AUDIO_DIR = Path(__file__).resolve().parent.parent / "data" / "audio"
DEMO_TURNS = ("ami_ES2011a_headset0_40s-46s.wav", "LDC93S1_8k.wav")


def reference_transcripts() -> dict[str, str]:
    return json.loads((AUDIO_DIR / "transcripts.json").read_text())


def split_turns(samples: np.ndarray, sample_rate: int, min_pause_s: float = 0.9, silence_dbfs: float = -45.0,
                max_turns: int | None = None) -> list[np.ndarray]:
    """Cut at pauses of at least `min_pause_s` (by frame energy), so each sentence becomes a caller turn."""
    n = frame_samples(sample_rate)
    frames = [samples[i:i + n] for i in range(0, len(samples) - n + 1, n)]
    quiet = [rms_dbfs(f) < silence_dbfs for f in frames]
    min_pause = int(min_pause_s * 1000 / 20)
    turns: list[np.ndarray] = []
    start, run = None, 0
    for index, is_quiet in enumerate(quiet):
        if not is_quiet:
            start = index if start is None else start
            run = 0
            continue
        run += 1
        if start is not None and run >= min_pause:
            turns.append(np.concatenate(frames[start:index - run + 1 + 10]))
            start = None
    if start is not None:
        turns.append(np.concatenate(frames[start:]))
    return turns[:max_turns] if max_turns else turns


def demo_turns(sample_rate: int) -> list[np.ndarray]:
    return [load_audio(AUDIO_DIR / name, sample_rate) for name in DEMO_TURNS]
