"""The call actors' Prometheus series: the metrics actor's cumulative state, its exposition, a real call.

The state is plain Python (`iasovoice.metric_series`), tested without Ray; `gateway.metrics.exposition`
is read back with prometheus_client's own parser; the end-to-end test places a call on a real server
(stand-in engines: the whole call path, no models) and sees the histograms' counts grow on `/metrics`.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from iasovoice.audio.files import load_audio
from iasovoice.client import place_call
from iasovoice.metric_series import BY_SOURCE, SERIES, SeriesBook
from tests.paths import REPO_AUDIO
from tests.server import RunningServer

TRANSCRIPTION = "iasovoice_transcription_latency_seconds"
VOICE_TO_VOICE = "iasovoice_voice_to_voice_seconds"
SOAP = "iasovoice_soap_generation_seconds"
RESTARTS = "iasovoice_call_actor_restarts_total"


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# ------------------------------------------------------------------------------------------- unit
def test_histogram_state_is_cumulative_in_seconds() -> None:
    book = SeriesBook()
    for ms in (40, 100, 250, 250, 20_000):  # 0.1 s sits in the 0.1 bucket (le: less than or equal)
        assert book.record("TranscriptionLatency", ms, "Milliseconds")
    snap = book.snapshot()[TRANSCRIPTION]
    bounds = [bound for bound, _ in snap["buckets"]]
    assert bounds == [*BY_SOURCE["TranscriptionLatency"].buckets, math.inf]
    counts = dict(snap["buckets"])
    assert (counts[0.05], counts[0.1], counts[0.2], counts[0.3], counts[10.0], counts[math.inf]) == (1, 2, 2, 4, 4, 5)
    assert snap["count"] == 5 and snap["sum"] == pytest.approx(20.64)
    assert all(a <= b for (_, a), (_, b) in zip(snap["buckets"], snap["buckets"][1:], strict=False))


def test_each_source_feeds_its_series_and_nothing_else_does() -> None:
    book = SeriesBook()
    assert book.record("SOAPGenerationTime", 12.5, "Seconds")
    assert book.record("ResponseLatency", 1800, "Milliseconds")
    assert book.record("CallActorRestarts", 1, "Count") and book.record("CallActorRestarts", 2, "Count")
    assert not book.record("WebSocketConnections", 3, "Count")  # CloudWatch only
    assert not book.record("TranscriptionLatency", 120, "Count")  # a time without a time unit
    assert not book.record("TranscriptionLatency", float("nan"), "Milliseconds")
    assert not book.record("ResponseLatency", -5, "Milliseconds")
    assert book.ignored == 3
    snap = book.snapshot()
    assert set(snap) == {spec.name for spec in SERIES}
    assert snap[SOAP]["count"] == 1 and dict(snap[SOAP]["buckets"])[20.0] == 1 and dict(snap[SOAP]["buckets"])[10.0] == 0
    assert snap[VOICE_TO_VOICE]["sum"] == pytest.approx(1.8)
    assert snap["iasovoice_call_actor_restarts"] == {"kind": "counter", "value": 3.0}
    assert snap[TRANSCRIPTION]["count"] == 0


def test_exposition_serves_the_snapshot_as_prometheus_series() -> None:
    book = SeriesBook()
    book.record("TranscriptionLatency", 150, "Milliseconds")
    book.record("CallActorRestarts", 1, "Count")
    body, content_type = metrics.exposition(book.snapshot())
    assert content_type.startswith("text/plain")
    samples = _samples(body)
    assert samples[(f"{TRANSCRIPTION}_count", ())] == 1
    assert samples[(f"{TRANSCRIPTION}_bucket", (("le", "0.1"),))] == 0
    assert samples[(f"{TRANSCRIPTION}_bucket", (("le", "0.2"),))] == 1
    assert samples[(f"{TRANSCRIPTION}_bucket", (("le", "+Inf"),))] == 1
    assert samples[(f"{TRANSCRIPTION}_sum", ())] == pytest.approx(0.15)
    assert samples[(f"{VOICE_TO_VOICE}_count", ())] == 0 and samples[(f"{SOAP}_count", ())] == 0
    assert samples[(RESTARTS, ())] == 1
    assert ("iasovoice_websocket_connections", ()) in samples  # the gateway's own metrics are there too
    assert b"not fed yet" not in body
    text = body.decode()
    assert text.count(f"# TYPE {TRANSCRIPTION} histogram") == 1


def test_without_the_metrics_actor_the_gateway_metrics_are_still_served() -> None:
    samples = _samples(metrics.exposition(None)[0])
    assert ("iasovoice_websocket_connections", ()) in samples
    assert not any(name.startswith((TRANSCRIPTION, VOICE_TO_VOICE, SOAP, RESTARTS)) for name, _ in samples)


# ----------------------------------------------------------------------------------- end to end
def _scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=10) as response:
        assert response.status == 200
        return _samples(response.read())


@pytest.mark.e2e
def test_a_call_feeds_the_histograms_on_metrics(standin_server: RunningServer) -> None:
    before = _scrape(standin_server)
    for name in (f"{TRANSCRIPTION}_count", f"{VOICE_TO_VOICE}_count", f"{SOAP}_count", RESTARTS):
        assert (name, ()) in before, name
    call_id = "metrics-e2e-call"
    turns = [load_audio(REPO_AUDIO / "LDC93S1_8k.wav", 8000)]
    report = asyncio.run(place_call(standin_server.url, call_id, turns, 8000, token=standin_server.token(call_id),
                                    reply_timeout_s=20.0, note_timeout_s=60.0))
    assert report.note_ready and report.transcript("caller"), report.errors

    def grown(after: dict) -> list[str]:
        return [name for name in (TRANSCRIPTION, VOICE_TO_VOICE, SOAP)
                if after[(f"{name}_count", ())] <= before[(f"{name}_count", ())]]

    deadline = time.monotonic() + 20  # `record` is fire-and-forget: allow it a moment to land
    while (missing := grown(after := _scrape(standin_server))) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not missing, f"{missing} did not grow"
    assert after[(f"{SOAP}_count", ())] == before[(f"{SOAP}_count", ())] + 1, "one note, one observation"
    inf = (("le", "+Inf"),)
    assert after[(f"{TRANSCRIPTION}_bucket", inf)] == after[(f"{TRANSCRIPTION}_count", ())]
    assert after[(f"{VOICE_TO_VOICE}_sum", ())] > before[(f"{VOICE_TO_VOICE}_sum", ())]
    assert after[(RESTARTS, ())] == before[(RESTARTS, ())], "no call actor died"
