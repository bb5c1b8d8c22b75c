"""File loading on the real recordings in data/audio (different rates, depths, channels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from iasovoice.audio.files import load_audio, write_wav
from iasovoice.audio.pcm import rms_dbfs
from iasovoice.audio.resample import resample
from iasovoice.errors import AudioFormatError
from tests.paths import REPO_AUDIO as AUDIO


def test_jfk_flac_44k_stereo_24bit_to_16k_mono() -> None:
    info = sf.info(str(AUDIO / "jfk.flac"))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
    a = load_audio(AUDIO / "jfk.flac", 16000)
    assert a.dtype == np.int16 and a.ndim == 1
    assert len(a) / 16000 == pytest.approx(info.frames / 44100, abs=0.01)
    assert 10.5 < len(a) / 16000 < 11.5
    assert -40 < rms_dbfs(a) < -6  # real speech level, not silence or clipping garbage


def test_stereo_is_downmixed_by_mean(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    left = np.sin(2 * np.pi * 300 * t) * 0.5
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), 8000, subtype="PCM_24")
    a = load_audio(path, 8000)
    assert np.max(np.abs(a.astype(np.int32) - np.rint(left * 0.5 * 32768))) <= 1


def test_int16_wav_at_native_rate_is_bit_exact() -> None:
    a = load_audio(AUDIO / "OSR_us_000_0034_8k.wav", 8000)
    raw, rate = sf.read(str(AUDIO / "OSR_us_000_0034_8k.wav"), dtype="int16")
    assert rate == 8000
    assert np.array_equal(a, raw)
    assert len(a) / 8000 == pytest.approx(35.6, abs=0.1)


def test_upsample_8k_to_16k_keeps_duration_and_level() -> None:
    a8 = load_audio(AUDIO / "LDC93S1_8k.wav", 8000)
    a16 = load_audio(AUDIO / "LDC93S1_8k.wav", 16000)
    assert len(a16) == 2 * len(a8)
    assert rms_dbfs(a16) == pytest.approx(rms_dbfs(a8), abs=0.5)


def test_write_wav_round_trip(tmp_path: Path) -> None:
    a = load_audio(AUDIO / "librispeech_1272-128104-0000.wav", 16000)
    assert len(a) == 93680
    out = tmp_path / "out.wav"
    write_wav(out, a, 16000)
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
    assert np.array_equal(load_audio(out, 16000), a)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "nope.wav", 8000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioFormatError):
        load_audio(bad, 8000)


def test_resample_dtypes_identity_and_antialiasing() -> None:
    x16 = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 10000).astype(np.int16)
    assert resample(x16, 16000, 16000) is x16
    y = resample(x16, 16000, 8000)
    assert y.dtype == np.int16 and len(y) == 8000
    assert rms_dbfs(y) == pytest.approx(rms_dbfs(x16), abs=0.2)
    yf = resample(x16.astype(np.float32) / 32768, 16000, 8000)
    assert yf.dtype == np.float32
    # A 6 kHz tone is above the 8 kHz Nyquist limit: it must be filtered, not folded to 2 kHz.
    tone6k = (np.sin(2 * np.pi * 6000 * np.arange(16000) / 16000) * 10000).astype(np.int16)
    assert rms_dbfs(resample(tone6k, 16000, 8000)[200:-200]) < rms_dbfs(tone6k) - 60
    assert len(resample(np.zeros(0, dtype=np.int16), 8000, 16000)) == 0
    with pytest.raises(AudioFormatError):
        resample(np.zeros(10, dtype=np.int32), 8000, 16000)
