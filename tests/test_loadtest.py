"""`iasovoice loadtest`: the measurement rules on constructed timelines, a real run against the e2e server,
and the clear one-line failure when no server is listening."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iasovoice.cli import main
from iasovoice.demo_audio import AUDIO_DIR
from iasovoice.loadtest.audio import LoadTestError, encode_turn, load_pool
from iasovoice.loadtest.metrics import (
    CallRecord,
    ReplyRecord,
    ReplyTracker,
    concurrency_timeline,
    parse_gateway_log,
    percentile,
    summarize,
)
from iasovoice.loadtest.runner import LoadSettings
from tests.server import SECRET, SECRET_ENV, RunningServer, free_port


# ------------------------------------------------------------------------------------ percentiles
def test_percentile_matches_numpy_linear_interpolation() -> None:
    values = [0.9, 0.1, 0.5, 0.3, 2.0, 0.7, 1.1]
    for q in (0, 10, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None
    assert percentile([4.0], 99) == 4.0
    with pytest.raises(ValueError):
        percentile(values, 101)


# ------------------------------------------------------------------------------- underrun rules
def _frames(reply: ReplyRecord, times: list[float]) -> ReplyRecord:
    for at in times:
        reply.add_frame(at)
    return reply


def test_evenly_paced_reply_has_no_underrun() -> None:
    reply = _frames(ReplyRecord("turn", opened_at=10.0), [11.0 + 0.02 * i for i in range(100)])
    assert reply.frames == 100 and reply.underruns == 0
    assert reply.latency_s == pytest.approx(1.0)
    assert reply.max_late_s == pytest.approx(0.0, abs=1e-9)


def test_relay_batches_of_two_every_40ms_are_not_gaps() -> None:
    times = [t for k in range(50) for t in (1.0 + 0.04 * k, 1.0 + 0.04 * k + 0.0005)]
    assert _frames(ReplyRecord("turn", 0.5), times).underruns == 0


def test_gap_beyond_pacing_plus_tolerance_is_an_underrun() -> None:
    # 10 frames paced, then the server stalls: next frame 150 ms after the previous (130 ms late).
    times = [1.0 + 0.02 * i for i in range(10)]
    times += [times[-1] + 0.15 + 0.02 * i for i in range(10)]
    reply = _frames(ReplyRecord("turn", 0.0), times)
    assert reply.underruns == 1
    assert reply.max_late_s == pytest.approx(0.13)
    # 70 ms gap = 50 ms late: within the 60 ms tolerance, not an audible gap.
    ok = _frames(ReplyRecord("turn", 0.0), [1.0, 1.02, 1.09, 1.11])
    assert ok.underruns == 0


def test_audio_sent_ahead_buys_slack_like_a_playback_buffer() -> None:
    # 10 frames (200 ms of audio) arrive at once, then the next one 250 ms later: only 50 ms late.
    reply = _frames(ReplyRecord("turn", 0.0), [1.0] * 10 + [1.25])
    assert reply.underruns == 0 and reply.max_late_s == pytest.approx(0.05)


def test_clear_restarts_playback_so_the_wait_after_barge_in_is_not_a_gap() -> None:
    reply = _frames(ReplyRecord("turn", 0.0), [1.0, 1.02])
    reply.clear()
    _frames(reply, [3.0, 3.02])
    assert reply.underruns == 0 and reply.clears == 1 and reply.frames == 4


def test_tracker_attributes_trailing_audio_to_the_reply_it_belongs_to() -> None:
    tracker = ReplyTracker(opened_at=0.0)
    for i in range(100):  # greeting from 0.5 s
        tracker.on_audio(0.5 + 0.02 * i)
    first = tracker.caller_turn_ended(5.0, turn_index=0, caller_audio_s=2.0)
    for i in range(50):  # reply 1.5 s after the caller stopped
        tracker.on_audio(6.5 + 0.02 * i)
    tracker.caller_turn_ended(10.0, turn_index=1, caller_audio_s=2.0)
    tracker.on_audio(12.0)
    greeting, second = tracker.replies[0], tracker.replies[2]
    assert greeting.latency_s == pytest.approx(0.5) and greeting.frames == 100
    assert first.latency_s == pytest.approx(1.5) and first.frames == 50 and first.underruns == 0
    assert second.latency_s == pytest.approx(2.0) and second.frames == 1
    assert tracker.frames == 151 and tracker.last_audio_at == 12.0


# ------------------------------------------------------------------------------- call summaries
def _call(index: int, connected: float, closed: float, latencies: list[float], note_s: float | None) -> CallRecord:
    record = CallRecord(index, f"c{index}", scheduled_at=connected, phase="done")
    record.connected_at, record.closed_at, record.connect_s = connected, closed, 0.01
    record.tracker = ReplyTracker(connected)
    record.tracker.on_audio(connected + 0.3)
    for turn, latency in enumerate(latencies):
        opened = connected + 2.0 + 3 * turn
        record.tracker.caller_turn_ended(opened, turn, 1.0)
        record.tracker.on_audio(opened + latency)
    record.frames_sent = 500
    record.note_s = note_s
    return record


def test_summary_counts_latencies_concurrency_notes_and_failures() -> None:
    calls = [_call(0, 0.0, 10.0, [0.5, 0.7], 3.0), _call(1, 1.0, 12.0, [0.9], 4.0), _call(2, 11.0, 15.0, [], None)]
    calls[2].add_error("no note available within 5 s of hang-up")
    summary = summarize(calls, t0=0.0)
    assert summary["calls"] == {"total": 3, "connected": 3, "ok": 2, "failed": 1, "peak_concurrent": 2,
                                "peak_talking": 2}
    assert summary["voice_to_voice_s"]["count"] == 3
    assert summary["voice_to_voice_s"]["p50"] == pytest.approx(0.7)
    assert summary["voice_to_voice_s"]["max"] == pytest.approx(0.9)
    assert summary["greeting_latency_s"]["p50"] == pytest.approx(0.3)
    assert summary["notes"]["available"] == 2 and summary["notes"]["missing"] == 1
    assert summary["frames"]["lost_in"] is None, "without the gateway's counts, loss is unknown, not zero"
    assert summary["errors"]["first"] == ["c2: no note available within 5 s of hang-up"]
    timeline = concurrency_timeline(calls, 0.0)
    assert timeline == [(0.0, 0), (0.0, 1), (1.0, 2), (10.0, 1), (11.0, 2), (12.0, 1), (15.0, 0)]
    calls[0].stop_sent_at = 9.0  # hung up at 9 s, socket open until the note at 10 s
    calls[1].stop_sent_at = 10.5
    assert concurrency_timeline(calls, 0.0, talking=True)[-4:] == [(9.0, 1), (10.5, 0), (11.0, 1), (15.0, 0)]
    json.dumps([c.to_dict(0.0) for c in calls])  # every record serialises


def test_gateway_log_gives_exact_frame_loss() -> None:
    log = (
        "12:00:01 INFO gateway.server: call lt-ab-0000: socket done (stop), 498 frames in, 300 out\n"
        "12:00:02 INFO gateway.server: call other: socket done (caller_hangup), 5 frames in, 0 out\n"
    )
    counts = parse_gateway_log(log)
    assert counts == {"lt-ab-0000": (498, 300), "other": (5, 0)}
    record = _call(0, 0.0, 1.0, [0.5], 1.0)
    record.server_frames_in, record.server_frames_out = counts["lt-ab-0000"]
    assert record.frames_lost_in == 2 and record.frames_lost_out == 300 - record.agent_frames


# ------------------------------------------------------------------------------------ audio pool
def test_pool_is_pre_encoded_wire_json_split_at_pauses() -> None:
    pool = load_pool(AUDIO_DIR, 8000)
    assert len(pool.turns) >= 10, "the Harvard-sentence recording alone gives ~10 turns"
    message = json.loads(pool.turns[0].messages[0])
    assert message["type"] == "audio" and message["metadata"] == {"sampleRate": 8000, "encoding": "pcm"}
    assert all(len(json.loads(m)["data"]) == 428 for m in pool.turns[0].messages[:5]), "320 bytes = 20 ms"
    assert all(0 < t.speech_frames <= len(t.messages) for t in pool.turns)
    assert json.loads(pool.silence)["data"] == base64.b64encode(bytes(320)).decode()
    assert encode_turn("quiet", np.zeros(8000, dtype=np.int16), 8000) is None
    with pytest.raises(LoadTestError, match="no WAV or FLAC"):
        load_pool(Path(__file__).parent, 8000)


def test_settings_are_bounded() -> None:
    LoadSettings("ws://127.0.0.1:1", 2, 1, 8).validate()
    for bad in (LoadSettings("http://x", 1, 1, 1), LoadSettings("ws://x", 0, 1, 1),
                LoadSettings("ws://x", 1, -1, 1), LoadSettings("ws://x", 1, 1, 1e6)):
        with pytest.raises(LoadTestError):
            bad.validate()


# ------------------------------------------------------------------------------ unreachable server
def test_unreachable_server_is_one_clear_line_and_exit_code_2(tmp_path: Path) -> None:
    port = free_port()  # bound and released: nothing listens there
    out = subprocess.run(
        [sys.executable, "-m", "iasovoice.cli", "loadtest", "--url", f"ws://127.0.0.1:{port}", "--calls", "1",
         "--out", str(tmp_path / "lt")],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "cannot reach the gateway" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "lt").exists()


# ----------------------------------------------------------------------------------- a real run
@pytest.mark.e2e
def test_loadtest_two_calls_through_the_whole_call_path(
    standin_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load tester against a real server whose calls take the real path (VAD, turns, replies, notes)
    on constant-time stand-in engines: what is tested is the tester, so the models' minutes are not spent."""
    server = standin_server
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copy(AUDIO_DIR / "LDC93S1_8k.wav", audio)  # one short clean sentence keeps the run short
    out = tmp_path / "lt"
    monkeypatch.setenv(SECRET_ENV, SECRET)
    code = main([
        "loadtest", "--url", server.url, "--calls", "2", "--ramp", "1", "--duration", "4", "--audio", str(audio),
        "--token-secret-env", SECRET_ENV, "--note-timeout", "150", "--server-log", str(server.log_path),
        "--out", str(out), "--no-live",
    ])
    results = json.loads((out / "results.json").read_text())
    assert code == 0, results["summary"]["errors"]
    calls = results["calls"]
    assert len(calls) == 2 and all(c["ok"] for c in calls)
    summary = results["summary"]
    assert summary["errors"]["calls_with_errors"] == 0 and summary["frames"]["send_failures"] == 0
    assert summary["voice_to_voice_s"]["count"] >= 2
    assert 0 < summary["voice_to_voice_s"]["max"] < 30
    assert all(c["greeting_latency_s"] is not None for c in calls)
    assert summary["notes"]["available"] == 2 and summary["notes"]["time_to_note_s"]["max"] <= 150
    assert summary["frames"]["calls_with_server_counts"] == 2
    assert summary["frames"]["lost_in"] == 0 and summary["frames"]["lost_out"] == 0
    assert all(c["frames_sent"] > 200 and c["agent_frames"] > 100 for c in calls)
    assert (out / "loadtest.png").stat().st_size > 10_000
