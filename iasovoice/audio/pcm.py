"""16-bit PCM and G.711 mu-law helpers used on every 20 ms telephone frame.

Everything here is vectorised numpy (table look-ups for mu-law) because it runs per frame for hundreds of
concurrent calls; nothing allocates more than the output array.
"""

from __future__ import annotations

import numpy as np

from iasovoice.errors import AudioFormatError

FRAME_MS = 20
SUPPORTED_RATES: tuple[int, ...] = (8000, 16000)
# Floor returned by rms_dbfs for digital silence, so callers never have to handle -inf.
SILENCE_DBFS = -120.0

_INT16_SCALE = 32768.0
_PCM16 = np.dtype("<i2")


def pcm16_to_array(data: bytes) -> np.ndarray:
    """Decode little-endian 16-bit PCM; a copy so the result is writable and owns its memory."""
    if len(data) % 2:
        raise AudioFormatError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_PCM16).astype(np.int16)


def array_to_pcm16(samples: np.ndarray) -> bytes:
    """Encode samples as little-endian 16-bit PCM; float input is taken as [-1, 1] and clipped."""
    a = np.asarray(samples)
    if a.ndim != 1:
        raise AudioFormatError(f"expected mono 1-D samples, got shape {a.shape}")
    if a.dtype.kind == "f":
        a = float32_to_int16(a)
    elif a.dtype.kind in "iu":
        if a.dtype != np.int16 and a.size and (a.min() < -32768 or a.max() > 32767):
            raise AudioFormatError(f"{a.dtype} samples exceed the 16-bit range")
    else:
        raise AudioFormatError(f"cannot encode {a.dtype} samples as PCM")
    return a.astype(_PCM16, copy=False).tobytes()


def int16_to_float32(a: np.ndarray) -> np.ndarray:
    """Scale by 1/32768 so int16 -> float32 -> int16 round-trips exactly."""
    return np.asarray(a, dtype=np.int16).astype(np.float32) * np.float32(1.0 / _INT16_SCALE)


def float32_to_int16(a: np.ndarray) -> np.ndarray:
    """Inverse of int16_to_float32 with rounding and clipping, since models can overshoot [-1, 1]."""
    scaled = np.rint(np.asarray(a, dtype=np.float32) * np.float32(_INT16_SCALE))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def frame_samples(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    """Samples per frame; rejects rate/duration pairs that do not give whole samples."""
    if sample_rate <= 0 or frame_ms <= 0:
        raise AudioFormatError(f"invalid frame: {sample_rate} Hz, {frame_ms} ms")
    n, rem = divmod(sample_rate * frame_ms, 1000)
    if rem:
        raise AudioFormatError(f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples")
    return n


def split_frames(
    samples: np.ndarray, sample_rate: int, frame_ms: int = FRAME_MS
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut into whole frames (views, no copies) and return the remainder to prepend to the next chunk."""
    n = frame_samples(sample_rate, frame_ms)
    a = np.asarray(samples)
    whole = (len(a) // n) * n
    return list(a[:whole].reshape(-1, n)), a[whole:]


def _build_ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    """Sun/CCITT g711.c mu-law (the variant Python's audioop uses), tabulated once at import."""
    # Decode: 256 code words -> int16.
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    decode = np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)
    # Encode: all 65536 int16 values -> code word, indexed by the value's uint16 bit pattern.
    v = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit linear, arithmetic shift as in g711.c
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code) ^ mask
    encode = np.empty(65536, dtype=np.uint8)
    encode[np.arange(-32768, 32768).astype(np.int16).view(np.uint16)] = code.astype(np.uint8)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _build_ulaw_tables()


def mulaw_encode(samples_int16: np.ndarray) -> bytes:
    """G.711 mu-law, one byte per sample, bit-identical to audioop.lin2ulaw."""
    a = np.asarray(samples_int16)
    if a.dtype != np.int16:
        raise AudioFormatError(f"mu-law encoding needs int16 samples, got {a.dtype}")
    return _ULAW_ENCODE[a.view(np.uint16)].tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes to int16 (a fresh array)."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def rms_dbfs(samples_int16: np.ndarray) -> float:
    """RMS level relative to 32768 (a full-scale square wave is 0 dBFS, a full-scale sine about -3)."""
    a = np.asarray(samples_int16)
    if a.size == 0:
        return SILENCE_DBFS
    x = a.astype(np.float32).ravel()
    ms = float(np.dot(x, x)) / a.size
    if ms <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, float(10.0 * np.log10(ms / (_INT16_SCALE * _INT16_SCALE))))
