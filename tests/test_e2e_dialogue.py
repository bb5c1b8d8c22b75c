"""Dialogue end to end: the real Rasa server (trained from rasa/), a real call over the websocket.

The caller's words are spoken by the real Piper voice and heard by the real Whisper, so each test
goes through every layer a phone call does: VAD, ASR, the safety rules, Rasa's NLU, policy and form
validation (its action server), TTS, playout, the transcript and the SOAP note.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from iasovoice.audio.resample import resample
from iasovoice.client import CallReport, place_call
from iasovoice.config import load_config
from iasovoice.dialogue.rasa_server import http_json
from iasovoice.engines.tts.piper_engine import PiperEngine
from iasovoice.notes.schema import SoapNote
from tests.server import RunningServer

# Real calls with a note at the end take minutes on 2 cores; the outage test also waits for Rasa to restart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
RATE = 8000
SAFETY = load_config().dialogue.safety


# Piper samples its phoneme durations and pitch from noise, so each run would speak a line a little
# differently and Whisper would hear it differently ("3.30 in day afternoon" one run in eight, which
# the never-guess time parser rightly refuses and the scripted caller cannot answer again). The
# test caller speaks with the noise turned down to a trace: the same audio every run, a steady test.
STEADY_CALLER = {"caller": {"noise_scale": 0.001, "noise_w_scale": 0.001}}


@pytest.fixture(scope="module")
def voice() -> PiperEngine:
    return PiperEngine(voices=STEADY_CALLER)


def speak(voice: PiperEngine, *sentences: str, gap_s: float = 0.0) -> np.ndarray:
    """The caller's audio at 8 kHz: each sentence by Piper, `gap_s` of line silence between them."""
    parts: list[np.ndarray] = []
    for sentence in sentences:
        audio = voice.synthesize(sentence, "caller")
        parts.append(resample(audio.samples, audio.sample_rate, RATE))
        parts.append(np.zeros(int(gap_s * RATE), dtype=np.int16))
    return np.concatenate(parts)


def call(server: RunningServer, call_id: str, turns: list[np.ndarray], **kwargs: object) -> CallReport:
    return asyncio.run(place_call(server.url, call_id, turns, RATE, token=server.token(call_id), **kwargs))


def transfers(report: CallReport) -> list[dict]:
    return [e for e in report.events if e.get("type") == "transfer"]


def next_weekday(today: datetime.date, weekday: int) -> datetime.date:
    return today + datetime.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


BOOKING, EMERGENCY, CRISIS = "e2e-dialogue-booking", "e2e-dialogue-emergency", "e2e-dialogue-crisis"


def _crisis_turn(voice: PiperEngine) -> np.ndarray:
    crisis = speak(voice, "I don't want to be alive anymore.")
    talking_over = speak(voice, "Hello, are you there?", "Can you hear me?", "Hello?", gap_s=1.0)
    return np.concatenate([crisis, np.zeros(RATE, np.int16), talking_over])


@pytest.fixture(scope="module")
def three_calls(server: RunningServer, voice: PiperEngine) -> dict[str, CallReport]:
    """A booking, an emergency and a crisis, on the line at the same time as a clinic would take them.

    Placed together they also cost one call's wall time instead of three (calls are paced in real time).
    """
    booking = [
        speak(voice, "Hi, I would like to book an appointment please."),
        speak(voice, "Next Tuesday."),
        speak(voice, "Three thirty in the afternoon."),
        speak(voice, "It is a follow up for my blood pressure."),
    ]
    emergency = [speak(voice, "My husband has crushing chest pains and he is struggling to breathe.")]

    async def place(call_id: str, turns: list[np.ndarray], **kwargs: object) -> CallReport:
        return await place_call(server.url, call_id, turns, RATE, token=server.token(call_id), **kwargs)

    async def together() -> list[CallReport]:
        return await asyncio.gather(
            place(BOOKING, booking, reply_timeout_s=60.0),
            place(EMERGENCY, emergency, reply_timeout_s=60.0),
            place(CRISIS, [_crisis_turn(voice)], reply_timeout_s=60.0, reply_quiet_s=3.0),
        )

    return {report.call_id: report for report in asyncio.run(together())}


def test_a_booking_over_several_turns_lands_in_the_note(
    server: RunningServer, three_calls: dict[str, CallReport]
) -> None:
    report = three_calls[BOOKING]
    assert report.errors == [] and report.ended == "completed", server.log_tail()
    agent = report.transcript("agent")
    assert len(agent) >= 5, agent
    assert not transfers(report)
    note = SoapNote.model_validate(server.note(BOOKING))
    slots = note.dialogue_slots
    today = datetime.date.today()
    assert slots.get("appointment_action") == "book", slots
    assert slots.get("appointment_date") in {
        next_weekday(today, 1).isoformat(), (next_weekday(today, 1) + datetime.timedelta(days=7)).isoformat()
    }, slots
    assert slots.get("appointment_time") == "15:30", slots
    assert "blood pressure" in str(slots.get("appointment_reason", "")).lower(), slots
    # Rasa's confirmation was spoken as written in rasa/domain.yml, with the slots filled in.
    assert any("15:30" in text or "appointment" in text.lower() for text in agent[-2:]), agent


def test_an_emergency_gets_the_safety_message_and_a_transfer_in_one_turn(
    server: RunningServer, three_calls: dict[str, CallReport]
) -> None:
    report = three_calls[EMERGENCY]
    assert report.errors == []
    sent = transfers(report)
    assert [t["reason"] for t in sent] == ["emergency"] and sent[0]["target"] == SAFETY.emergency_target
    agent = report.transcript("agent")
    assert agent[1] == SAFETY.emergency_message, agent
    first_reply = report.turns[0].latency_s
    assert first_reply is not None, "the caller heard the safety message"
    note = SoapNote.model_validate(server.note(EMERGENCY))
    assert {"emergency_detected", "emergency_message_given", "transfer_requested:emergency"} <= set(note.flags)


def test_a_crisis_script_is_heard_whole_while_the_caller_talks_over_it(
    server: RunningServer, voice: PiperEngine, three_calls: dict[str, CallReport]
) -> None:
    report = three_calls[CRISIS]
    assert report.errors == []
    assert [t["reason"] for t in transfers(report)] == ["crisis"]
    agent = report.transcript("agent")
    assert SAFETY.crisis_message in agent, agent
    assert not any("[interrupted" in text for text in agent if text.startswith(SAFETY.crisis_message[:20]))
    # Every frame of the script reached the caller: compare with the script's own length.
    expected_frames = len(speak(voice, SAFETY.crisis_message)) // 160
    frames_after_greeting = len(report.agent_audio)
    assert frames_after_greeting >= expected_frames
    note = SoapNote.model_validate(server.note(CRISIS))
    assert "crisis_line_given" in note.flags and "crisis_line_incomplete" not in note.flags
    script_turn = next(t for t in note.transcript if t.role == "agent" and t.text.startswith(SAFETY.crisis_message[:30]))
    assert script_turn.text == SAFETY.crisis_message


# ------------------------------------------------------------------------------- Rasa goes down
# This test runs on the shared server and leaves it as it found it: it waits until the supervisor has
# restarted Rasa and a call is answered by Rasa again.
def _rasa_server_pid(server: RunningServer) -> int:
    """The managed `rasa run --enable-api` of this IasoVoice server (found by its port in /proc)."""
    log = server.log_path.read_text()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--enable-api" in cmdline and str(_rasa_port(server)).encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no Rasa server process found for this server:\n{log[-2000:]}")


def _rasa_port(server: RunningServer) -> int:
    args = " ".join(server.process.args)  # type: ignore[arg-type]
    url = next(part for part in args.split() if part.startswith("dialogue.rasa.url="))
    return int(url.rsplit(":", 1)[1])


def test_with_rasa_stopped_mid_call_the_call_completes_and_rasa_comes_back(
    server: RunningServer, voice: PiperEngine
) -> None:
    call_id = "e2e-dialogue-outage"
    killed: list[float] = []

    def on_event(event: dict) -> None:
        # Stop Rasa as soon as it has answered the first turn (the form's first question).
        if event.get("type") == "transcript" and event.get("role") == "agent" and len(killed) == 0 \
                and not event["text"].startswith("Hello"):
            os.kill(_rasa_server_pid(server), signal.SIGKILL)
            killed.append(time.monotonic())

    turns = [speak(voice, "I need to book an appointment."), speak(voice, "Next Tuesday please."),
             speak(voice, "Thank you, goodbye.")]
    report = call(server, call_id, turns, on_event=on_event, reply_timeout_s=45.0)
    assert killed, "Rasa answered the first turn before it was stopped"
    assert report.errors == [] and report.ended == "completed", server.log_tail()
    assert all(t.first_reply_audio is not None for t in report.turns), "every turn was answered"
    note = SoapNote.model_validate(server.note(call_id))
    assert "dialogue_degraded" in note.flags
    # The supervisor restarts Rasa; once it answers again, so does the next call's dialogue.
    deadline = time.monotonic() + 240
    status_url = f"http://127.0.0.1:{_rasa_port(server)}/status"
    while time.monotonic() < deadline and not (http_json(status_url, 2.0) or {}).get("model_file"):
        time.sleep(1)
    assert "Rasa server exited" in server.log_path.read_text(), "the supervisor saw Rasa die"
    report = call(server, "e2e-dialogue-after-restart", [speak(voice, "I would like to book an appointment.")],
                  reply_timeout_s=30.0)
    note = SoapNote.model_validate(server.note(report.call_id))
    assert "dialogue_degraded" not in note.flags, "Rasa did not come back:\n" + server.log_tail(80)
    assert note.dialogue_slots.get("appointment_action") == "book", note.dialogue_slots
    metrics = [json.loads(line) for line in (server.root / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("name") == "DialogueDegraded" for m in metrics)
