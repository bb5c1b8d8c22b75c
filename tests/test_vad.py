"""VAD on real recordings: Silero (ONNX, no torch) and the deterministic energy detector.

Ground truth comes from the recordings themselves (clearly loud vs clearly quiet stretches, and the 10
Harvard sentences of the OSR file separated by ~1 s pauses), never from the detector under test.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from iasovoice.audio.files import load_audio
from iasovoice.audio.pcm import rms_dbfs, split_frames
from iasovoice.errors import AudioFormatError, ModelNotFoundError
from iasovoice.vad import EnergyVAD, SileroVAD, VoiceActivityDetector
from iasovoice.vad.silero import default_model_path
from tests.paths import REPO_AUDIO as AUDIO

OSR = AUDIO / "OSR_us_000_0034_8k.wav"
LDC = AUDIO / "LDC93S1_8k.wav"
needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None, reason="silero-vad not installed"
)
RATES = (8000, 16000)


def _probs(vad: VoiceActivityDetector, audio: np.ndarray) -> np.ndarray:
    frames, _ = split_frames(audio, vad.sample_rate)
    return np.array([vad(f) for f in frames])


def _segments(
    p: np.ndarray, on: float = 0.5, off: float = 0.35, min_silence_frames: int = 35
) -> list[tuple[int, int]]:
    """Hysteresis segmentation like the call's turn detector: start at `on`, end after a silence run."""
    segs, start, quiet = [], None, 0
    for i, x in enumerate(p):
        if start is None:
            if x >= on:
                start, quiet = i, 0
        elif x < off:
            quiet += 1
            if quiet >= min_silence_frames:
                segs.append((start, i - quiet + 1))
                start = None
        else:
            quiet = 0
    if start is not None:
        segs.append((start, len(p)))
    return segs


def _energy_truth(audio8k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames that are unmistakably speech (loud) and unmistakably pause (quiet for +/-200 ms)."""
    frames, _ = split_frames(audio8k, 8000)
    db = np.array([rms_dbfs(f) for f in frames])
    loud = db > -30
    quiet = db < -50
    k = 10
    padded = np.pad(quiet, k, constant_values=False)
    long_quiet = np.array([padded[i : i + 2 * k + 1].all() for i in range(len(quiet))])
    return loud, long_quiet


@needs_silero
def test_model_located_without_importing_torch() -> None:
    # In a fresh interpreter, because other tests may legitimately have imported things already.
    code = (
        "import sys; from iasovoice.vad import SileroVAD; from iasovoice.vad.silero import default_model_path; "
        "p = default_model_path(); SileroVAD(8000); "
        "assert p.name == 'silero_vad.onnx' and p.is_file(); "
        "assert 'silero_vad' not in sys.modules and 'torch' not in sys.modules, 'imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_missing_model_raises_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as exc:
        SileroVAD(8000, model_path=tmp_path / "missing.onnx")
    assert exc.value.config_key == "vad.model_path"
    assert "missing.onnx" in str(exc.value)


@needs_silero
def test_unsupported_rate_rejected() -> None:
    with pytest.raises(AudioFormatError):
        SileroVAD(44100)


@needs_silero
@pytest.mark.parametrize("rate", RATES)
def test_silero_osr_speech_and_pauses(rate: int) -> None:
    audio8k = load_audio(OSR, 8000)
    loud, quiet = _energy_truth(audio8k)
    vad = SileroVAD(rate)
    assert isinstance(vad, VoiceActivityDetector)
    audio = audio8k if rate == 8000 else load_audio(OSR, rate)
    t0 = time.perf_counter()
    p = _probs(vad, audio)
    per_frame = (time.perf_counter() - t0) / len(p)
    print(f"\nSileroVAD @{rate} Hz: {per_frame * 1e6:.1f} us per 20 ms frame")
    n = min(len(p), len(loud))
    p, loud, quiet = p[:n], loud[:n], quiet[:n]
    assert loud.sum() > 500 and quiet.sum() > 200  # the truth masks are meaningful
    assert np.mean(p[loud] > 0.5) > 0.97
    assert np.mean(p[quiet] > 0.5) < 0.03
    # 10 sentences with ~1 s pauses; the comma pause in the last one is ~0.5 s and must not split it.
    segs = _segments(p)
    assert len(segs) == 10, segs
    assert segs[0][0] * 0.02 == pytest.approx(1.25, abs=0.2)


@needs_silero
@pytest.mark.parametrize("rate", RATES)
def test_silero_ldc_utterance(rate: int) -> None:
    p = _probs(SileroVAD(rate), load_audio(LDC, rate))
    t = np.arange(len(p)) * 0.02
    assert np.all(p[t < 0.2] < 0.5)  # leading near-silence
    assert np.mean(p[(t > 0.5) & (t < 2.6)] > 0.5) > 0.9
    assert len(_segments(p)) == 1


@needs_silero
@pytest.mark.parametrize("rate", RATES)
def test_silero_rejects_noise_and_silence(rate: int) -> None:
    rng = np.random.default_rng(1234)
    vad = SileroVAD(rate)
    for level_db in (-60, -45, -35):
        noise = (rng.standard_normal(rate * 5) * 32768 * 10 ** (level_db / 20)).astype(np.int16)
        vad.reset()
        p = _probs(vad, noise)
        assert np.mean(p > 0.5) < 0.02, level_db
    vad.reset()
    assert np.all(_probs(vad, np.zeros(rate * 2, dtype=np.int16)) < 0.1)


def _reference_chunk_probs(path: Path, audio: np.ndarray, rate: int) -> list[float]:
    """Line-by-line numpy transcription of silero_vad.utils_vad.OnnxWrapper.__call__ on whole chunks."""
    num, ctx_n = (512, 64) if rate == 16000 else (256, 32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, ctx_n), dtype=np.float32)
    x_all = audio.astype(np.float32) / 32768.0
    out = []
    for i in range(0, len(x_all) - num + 1, num):
        x = np.concatenate([context, x_all[None, i : i + num]], axis=1)
        prob, state = sess.run(None, {"input": x, "state": state, "sr": np.array(rate, dtype=np.int64)})
        context = x[..., -ctx_n:]
        out.append(float(prob[0, 0]))
    return out


@needs_silero
@pytest.mark.parametrize("rate", RATES)
def test_silero_framewise_streaming_equals_chunkwise_reference(rate: int) -> None:
    audio = load_audio(LDC, rate)
    ref = _reference_chunk_probs(default_model_path(), audio, rate)
    vad = SileroVAD(rate)
    frames, _ = split_frames(audio, rate)
    chunk = 512 if rate == 16000 else 256
    got, fed = [], 0
    for f in frames:
        before = fed // chunk
        p = vad(f)
        fed += len(f)
        if fed // chunk > before:
            got.append(p)
    assert len(got) == len(ref[: len(got)]) and len(got) >= len(ref) - 1
    np.testing.assert_allclose(got, ref[: len(got)], atol=1e-5)
    # reset() really forgets: the same audio again gives the same probabilities.
    vad.reset()
    assert [vad(f) for f in frames[:50]] == _probs(SileroVAD(rate), np.concatenate(frames[:50])).tolist()


@needs_silero
def test_silero_holds_previous_probability_while_chunk_fills() -> None:
    vad = SileroVAD(8000)
    frame = np.zeros(160, dtype=np.int16)
    assert vad(frame) == 0.0  # 160 < 256: nothing analysed yet
    p = vad(frame)  # 320 samples: one chunk done
    assert 0.0 < p < 0.5
    with pytest.raises(AudioFormatError):
        vad(np.zeros((2, 160), dtype=np.int16))


def test_energy_vad_deterministic_and_on_real_speech() -> None:
    vad = EnergyVAD(8000, threshold_dbfs=-45.0)
    assert isinstance(vad, VoiceActivityDetector)
    assert vad(np.zeros(160, dtype=np.int16)) < 0.01
    loud = (np.ones(160) * 3000).astype(np.int16)
    assert vad(loud) > 0.99
    at = (np.ones(160) * 32768 * 10 ** (-45 / 20)).astype(np.int16)
    assert vad(at) == pytest.approx(0.5, abs=0.05)
    audio = load_audio(OSR, 8000)
    loud_mask, quiet_mask = _energy_truth(audio)
    p1 = _probs(vad, audio)
    vad.reset()
    p2 = _probs(vad, audio)
    assert np.array_equal(p1, p2)
    assert np.mean(p1[loud_mask] > 0.5) == 1.0
    assert np.mean(p1[quiet_mask] > 0.5) < 0.01
