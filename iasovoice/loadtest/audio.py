"""The caller audio pool: real recordings cut into caller turns, each frame encoded to wire JSON once.

With hundreds of simulated callers the load generator must not spend its CPU re-encoding the same
audio 10,000 times a second, so every 20 ms frame of every turn becomes its final websocket text here,
once, and the senders only pick strings out of tuples.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iasovoice.audio.files import load_audio
from iasovoice.audio.pcm import array_to_pcm16, frame_samples, rms_dbfs
from iasovoice.demo_audio import split_turns
from iasovoice.errors import IasoVoiceError

AUDIO_SUFFIXES = (".wav", ".flac")
SPEECH_DBFS = -45.0  # the same level split_turns treats as a pause
MAX_FILES = 500  # bounded: a pool is a handful of recordings, not a corpus
MIN_SPEECH_S = 0.3  # shorter "turns" are clicks or breaths, which the agent's VAD would ignore


class LoadTestError(IasoVoiceError):
    """A load test that cannot run as asked; the CLI prints the message and exits with code 2."""


@dataclass(frozen=True)
class EncodedTurn:
    """One caller turn as ready-to-send messages. Names the recording, never its words (PHI rule)."""

    source: str
    messages: tuple[str, ...]
    speech_frames: int  # frames up to the end of speech; the rest is the trailing pause

    @property
    def seconds(self) -> float:
        return len(self.messages) * 0.02

    @property
    def speech_s(self) -> float:
        return self.speech_frames * 0.02


@dataclass(frozen=True)
class AudioPool:
    sample_rate: int
    turns: tuple[EncodedTurn, ...]
    silence: str  # one 20 ms frame of line silence, streamed between turns as a phone line does

    @property
    def longest_turn_s(self) -> float:
        return max(t.seconds for t in self.turns)

    @property
    def total_s(self) -> float:
        return sum(t.seconds for t in self.turns)


def encode_frame(pcm: bytes, sample_rate: int) -> str:
    """The gateway protocol's audio message; built by hand so a frame costs one string join."""
    data = base64.b64encode(pcm).decode("ascii")
    return f'{{"type":"audio","data":"{data}","metadata":{{"sampleRate":{sample_rate},"encoding":"pcm"}}}}'


def encode_turn(source: str, samples: np.ndarray, sample_rate: int) -> EncodedTurn | None:
    """Whole 20 ms frames (the last padded with silence); None when the audio holds no speech."""
    n = frame_samples(sample_rate)
    pad = (-len(samples)) % n
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    frames = [samples[i:i + n] for i in range(0, len(samples), n)]
    loud = [i for i, f in enumerate(frames) if rms_dbfs(f) >= SPEECH_DBFS]
    if not loud or (loud[-1] + 1 - loud[0]) * 0.02 < MIN_SPEECH_S:
        return None
    messages = tuple(encode_frame(array_to_pcm16(f), sample_rate) for f in frames)
    return EncodedTurn(source, messages, speech_frames=loud[-1] + 1)


def recordings(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise LoadTestError(f"audio directory {directory} does not exist")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise LoadTestError(f"no WAV or FLAC recordings in {directory}")
    return files[:MAX_FILES]


def load_pool(directory: Path, sample_rate: int, split: bool = True) -> AudioPool:
    """Every recording in `directory` at the line rate; split at pauses into turns unless `split` is off."""
    turns: list[EncodedTurn] = []
    for path in recordings(directory):
        try:
            samples = load_audio(path, sample_rate)
        except (OSError, IasoVoiceError) as error:
            raise LoadTestError(f"cannot use recording {path}: {error}") from None
        pieces = split_turns(samples, sample_rate) if split else [samples]
        for number, piece in enumerate(pieces):
            turn = encode_turn(f"{path.name}#{number}", piece, sample_rate)
            if turn is not None:
                turns.append(turn)
    if not turns:
        raise LoadTestError(f"the recordings in {directory} hold no speech above {SPEECH_DBFS:.0f} dBFS")
    silence = encode_frame(bytes(2 * frame_samples(sample_rate)), sample_rate)
    return AudioPool(sample_rate, tuple(turns), silence)
