"""Audio primitives: PCM/mu-law conversion, framing, resampling and file I/O."""

from iasovoice.audio.files import load_audio, write_wav
from iasovoice.audio.pcm import (
    FRAME_MS,
    SUPPORTED_RATES,
    array_to_pcm16,
    float32_to_int16,
    frame_samples,
    int16_to_float32,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_array,
    rms_dbfs,
    split_frames,
)
from iasovoice.audio.resample import resample

__all__ = [
    "FRAME_MS",
    "SUPPORTED_RATES",
    "array_to_pcm16",
    "float32_to_int16",
    "frame_samples",
    "int16_to_float32",
    "load_audio",
    "mulaw_decode",
    "mulaw_encode",
    "pcm16_to_array",
    "resample",
    "rms_dbfs",
    "split_frames",
    "write_wav",
]
