"""OpenAIWhisperEngine (the production GPU path) against a checkpoint built in the test.

openai-whisper and torch are the optional `gpu` extra and are not in the CPU environment, so every
test that needs them is skipped there with that reason. Where they are installed, the test builds a
tiny checkpoint from whisper's real architecture (`ModelDimensions` with small sizes, random weights,
saved the way `whisper.load_model` expects) so the real load and batched-decode code runs without any
downloaded weights. Random weights make the text meaningless: the tests check shapes, order, the
batched path against one-at-a-time decoding, and error handling.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from iasovoice.engines.asr.base import Transcription
from iasovoice.errors import ModelNotFoundError

SKIP_REASON = "openai-whisper and torch are the optional `gpu` extra; not installed in this environment"


def test_missing_gpu_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

    monkeypatch.setitem(sys.modules, "whisper", None)  # makes `import whisper` raise ImportError
    with pytest.raises(ImportError, match=r"\.\[gpu\]"):
        OpenAIWhisperEngine("/nonexistent/model.pt", device="cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch", reason=SKIP_REASON)
    pytest.importorskip("whisper", reason=SKIP_REASON)
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,  # fixed by the 30 s window: 3000 mel frames, stride-2 conv
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,  # English-only vocabulary, like tiny.en / medium.en
        n_text_ctx=64,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=1,
    )
    model = Whisper(dims)
    with torch.no_grad():
        # whisper leaves the decoder's positional embedding as torch.empty (a real checkpoint fills it).
        model.decoder.positional_embedding.normal_(0.0, 0.01)
        # Sharpen the random weights so that different audio decodes to different tokens.
        for name, param in model.named_parameters():
            if name != "decoder.token_embedding.weight":
                param.mul_(10.0)
    path = tmp_path_factory.mktemp("owhisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def engine(checkpoint: Path):
    from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

    return OpenAIWhisperEngine(str(checkpoint), device="cpu")


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_loads_and_decodes_a_batch_in_order(engine) -> None:
    batch = [_speech_like(2.0, 1), np.zeros(0, np.float32), _speech_like(5.5, 2), _speech_like(1.0, 3)]
    results = engine.transcribe_batch(batch)
    assert len(results) == len(batch)
    assert all(isinstance(r, Transcription) for r in results)
    assert [r.duration_s for r in results] == pytest.approx([2.0, 0.0, 5.5, 1.0])
    assert results[1].text == "" and results[1].avg_logprob is None
    for r in (results[0], results[2], results[3]):
        assert isinstance(r.text, str)
        assert r.avg_logprob is not None and np.isfinite(r.avg_logprob)
        assert r.no_speech_prob is not None and 0.0 <= r.no_speech_prob <= 1.0


def test_batched_decode_matches_one_at_a_time(engine) -> None:
    batch = [_speech_like(2.0, 1), _speech_like(5.5, 2), _speech_like(1.0, 3)]
    together = engine.transcribe_batch(batch)
    alone = [engine.transcribe_batch([audio])[0] for audio in batch]
    assert len({r.text for r in alone}) == len(batch), "inputs must decode differently to prove order"
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.avg_logprob for r in together] == pytest.approx([r.avg_logprob for r in alone], abs=1e-3)


def test_utterance_longer_than_the_window_is_transcribed(engine) -> None:
    results = engine.transcribe_batch([_speech_like(1.0, 4), _speech_like(31.0, 5)])
    assert len(results) == 2
    assert results[1].duration_s == pytest.approx(31.0)
    assert isinstance(results[1].text, str)


def test_missing_checkpoint_names_the_config_key(checkpoint: Path) -> None:
    from iasovoice.engines.asr.openai_whisper_engine import OpenAIWhisperEngine

    with pytest.raises(ModelNotFoundError) as info:
        OpenAIWhisperEngine(str(checkpoint.parent / "absent.pt"), device="cpu")
    assert info.value.config_key == "asr.model_path"
    # A bare model name would make whisper download; it must be refused as a missing file instead.
    with pytest.raises(ModelNotFoundError):
        OpenAIWhisperEngine("tiny.en", device="cpu")
