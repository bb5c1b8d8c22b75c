"""PCM / mu-law / framing helpers, checked against audioop (Python 3.11's C reference) and known values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
from iasovoice.errors import AudioFormatError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # removed in 3.13; only the oracle for these tests

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def test_constants() -> None:
    assert FRAME_MS == 20
    assert SUPPORTED_RATES == (8000, 16000)


def test_pcm16_little_endian_known_bytes() -> None:
    a = pcm16_to_array(b"\x01\x00\xff\xff\x00\x80\xff\x7f")
    assert a.dtype == np.int16
    assert a.tolist() == [1, -1, -32768, 32767]
    assert array_to_pcm16(a) == b"\x01\x00\xff\xff\x00\x80\xff\x7f"
    a[0] = 5  # result must be writable (not a read-only view of the bytes)


def test_pcm16_round_trip_all_values() -> None:
    assert np.array_equal(pcm16_to_array(array_to_pcm16(ALL_INT16)), ALL_INT16)


def test_pcm16_odd_length_rejected() -> None:
    with pytest.raises(AudioFormatError):
        pcm16_to_array(b"\x00\x01\x02")


def test_array_to_pcm16_float_is_scaled_and_clipped() -> None:
    out = pcm16_to_array(array_to_pcm16(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0], dtype=np.float32)))
    assert out.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768]


def test_array_to_pcm16_rejects_out_of_range_ints_and_2d() -> None:
    assert array_to_pcm16(np.array([1, -2], dtype=np.int32)) == b"\x01\x00\xfe\xff"
    with pytest.raises(AudioFormatError):
        array_to_pcm16(np.array([40000], dtype=np.int32))
    with pytest.raises(AudioFormatError):
        array_to_pcm16(np.zeros((2, 2), dtype=np.int16))


def test_int16_float32_round_trip_exact() -> None:
    f = int16_to_float32(ALL_INT16)
    assert f.dtype == np.float32
    assert f.min() == -1.0 and f.max() < 1.0
    assert np.array_equal(float32_to_int16(f), ALL_INT16)


def test_frame_samples() -> None:
    assert frame_samples(8000) == 160
    assert frame_samples(16000) == 320
    assert frame_samples(16000, 10) == 160
    with pytest.raises(AudioFormatError):
        frame_samples(11025, 1)  # 11.025 samples
    with pytest.raises(AudioFormatError):
        frame_samples(0)


def test_split_frames_whole_and_remainder() -> None:
    x = np.arange(1000, dtype=np.int16)
    frames, rest = split_frames(x, 8000)
    assert len(frames) == 6 and all(len(f) == 160 for f in frames)
    assert np.array_equal(np.concatenate(frames + [rest]), x)
    assert rest.tolist() == list(range(960, 1000))
    frames, rest = split_frames(x[:100], 16000)
    assert frames == [] and len(rest) == 100


def test_mulaw_encode_matches_audioop_for_every_int16() -> None:
    assert mulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


def test_mulaw_decode_matches_audioop_for_every_code() -> None:
    codes = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2")
    assert np.array_equal(mulaw_decode(codes), expected)


def test_mulaw_known_values() -> None:
    # G.711: 0xFF / 0x7F are the two zeros, 0x80 / 0x00 the extremes (+/-32124).
    assert mulaw_encode(np.array([0], dtype=np.int16)) == b"\xff"
    assert mulaw_decode(b"\xff\x7f\x80\x00").tolist() == [0, 0, 32124, -32124]
    assert mulaw_encode(np.array([32767, -32768], dtype=np.int16)) == b"\x80\x00"


def test_mulaw_round_trip_error_bounded() -> None:
    rt = mulaw_decode(mulaw_encode(ALL_INT16)).astype(np.int64)
    x = ALL_INT16.astype(np.int64)
    err = np.abs(rt - x)
    inside = np.abs(x) <= 32124
    # Quantisation step doubles per segment: error < 1/16 of magnitude + small floor (segment 0 step 8).
    assert np.all(err[inside] <= np.abs(x[inside]) // 16 + 8)
    assert err.max() <= 1024  # worst case: clipped extremes and the top segment's half step
    # Round-tripping a decoded value is exact (codes are fixed points).
    decoded = mulaw_decode(bytes(range(256)))
    assert mulaw_decode(mulaw_encode(decoded)).tolist() == decoded.tolist()


def test_mulaw_rejects_non_int16() -> None:
    with pytest.raises(AudioFormatError):
        mulaw_encode(np.zeros(4, dtype=np.float32))


def test_rms_dbfs() -> None:
    assert rms_dbfs(np.zeros(160, dtype=np.int16)) == -120.0
    assert rms_dbfs(np.array([], dtype=np.int16)) == -120.0
    square = np.tile(np.array([32767, -32767], dtype=np.int16), 80)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.01)
    t = np.arange(8000) / 8000
    sine = (np.sin(2 * np.pi * 400 * t) * 32767 * 10 ** (-20 / 20)).astype(np.int16)
    assert rms_dbfs(sine) == pytest.approx(-23.01, abs=0.05)
