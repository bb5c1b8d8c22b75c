"""PollyEngine against a real boto3 Polly client with botocore's Stubber.

No AWS endpoint is reachable from these machines or CI, so Polly is stubbed: the Stubber validates
every request against botocore's real Polly service model (parameter names, required ones, types) and the
tests assert the exact parameters sent, while responses carry a real `StreamingBody`. Credentials are
fake and set through the environment only for these tests.
"""

from __future__ import annotations

import io

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from iasovoice.engines.tts.base import SynthesizedAudio, TTSEngine, TTSError
from iasovoice.engines.tts.polly_engine import MAX_CHARS, PollyEngine, split_text


@pytest.fixture
def polly(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("polly", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def pcm_body(samples: np.ndarray) -> dict:
    data = samples.astype("<i2").tobytes()
    return {
        "AudioStream": StreamingBody(io.BytesIO(data), len(data)),
        "ContentType": "audio/pcm",
        "RequestCharacters": 10,
    }


def expected(text: str, voice_id: str, rate: str = "8000") -> dict:
    return {"Text": text, "VoiceId": voice_id, "OutputFormat": "pcm", "SampleRate": rate, "Engine": "neural"}


@pytest.mark.parametrize(
    ("voice", "voice_id"),
    [("default", "Joanna"), ("male", "Matthew"), ("clinical", "Salli"), ("empathetic", "Kendra")],
)
def test_logical_voice_maps_to_polly_voice(polly, voice: str, voice_id: str) -> None:
    client, stubber = polly
    samples = (np.sin(np.arange(800) / 5) * 8000).astype(np.int16)
    stubber.add_response("synthesize_speech", pcm_body(samples), expected("Take two tablets.", voice_id))
    engine = PollyEngine(client)
    audio = engine.synthesize("Take two tablets.", voice=voice)
    assert isinstance(audio, SynthesizedAudio)
    assert audio.sample_rate == 8000
    assert audio.samples.dtype == np.int16
    np.testing.assert_array_equal(audio.samples, samples)
    assert audio.duration_s == pytest.approx(0.1)


def test_sixteen_khz_and_standard_engine_are_passed_through(polly) -> None:
    client, stubber = polly
    params = expected("Hello.", "Joanna", rate="16000") | {"Engine": "standard"}
    stubber.add_response("synthesize_speech", pcm_body(np.zeros(160, np.int16)), params)
    audio = PollyEngine(client, sample_rate=16000, engine="standard").synthesize("Hello.")
    assert audio.sample_rate == 16000 and audio.samples.size == 160


def test_engine_satisfies_the_seam(polly) -> None:
    client, _ = polly
    engine = PollyEngine(client)
    assert isinstance(engine, TTSEngine)
    assert engine.voices == ("default", "male", "clinical", "empathetic")


def test_throttling_becomes_retryable_tts_error(polly) -> None:
    client, stubber = polly
    stubber.add_client_error(
        "synthesize_speech",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params=expected("Hello.", "Joanna"),
    )
    with pytest.raises(TTSError, match="ThrottlingException") as info:
        PollyEngine(client).synthesize("Hello.")
    assert info.value.code == "ThrottlingException"
    assert info.value.retryable


def test_text_length_error_is_not_retryable(polly) -> None:
    client, stubber = polly
    stubber.add_client_error(
        "synthesize_speech",
        service_error_code="TextLengthExceededException",
        service_message="too long",
        http_status_code=400,
    )
    with pytest.raises(TTSError) as info:
        PollyEngine(client).synthesize("Hello.")
    assert info.value.code == "TextLengthExceededException"
    assert not info.value.retryable


def test_long_text_is_split_at_sentences_and_audio_concatenated(polly) -> None:
    client, stubber = polly
    sentence = "Please take your blood pressure tablet with water every morning after breakfast. "
    text = sentence * 60  # ~4900 characters: two requests
    chunks = split_text(text)
    assert len(chunks) == 2
    assert all(len(c) <= MAX_CHARS and c.endswith(".") for c in chunks)
    for i, chunk in enumerate(chunks):
        stubber.add_response(
            "synthesize_speech", pcm_body(np.full(100, i + 1, np.int16)), expected(chunk, "Salli")
        )
    audio = PollyEngine(client).synthesize(text, voice="clinical")
    np.testing.assert_array_equal(audio.samples, np.r_[np.full(100, 1), np.full(100, 2)].astype(np.int16))


def test_split_text_handles_a_sentence_longer_than_the_limit() -> None:
    words = " ".join(["word"] * 50)  # 249 characters, no sentence end
    chunks = split_text(words + ". Short one.", limit=60)
    assert all(len(c) <= 60 for c in chunks)
    assert " ".join(chunks) == words + ". Short one."
    assert split_text("x" * 130, limit=60) == ["x" * 60, "x" * 60, "x" * 10]
    assert split_text("   ") == []


def test_empty_text_makes_no_request(polly) -> None:
    client, _ = polly
    audio = PollyEngine(client).synthesize("  ")
    assert audio.samples.size == 0 and audio.sample_rate == 8000


def test_unknown_voice_and_bad_rate_are_refused(polly) -> None:
    client, _ = polly
    with pytest.raises(ValueError, match=r"'robot'.*default, male, clinical, empathetic"):
        PollyEngine(client).synthesize("Hello.", voice="robot")
    with pytest.raises(ValueError, match="8000 or 16000"):
        PollyEngine(client, sample_rate=22050)
