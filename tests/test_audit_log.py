"""The audit log of note and transcript reads: its chain, its refusal of PHI, and a real gateway writing it.

The unit tests drive `iasovoice.audit.AuditLog` on a temporary file; the end-to-end test places a call
on a real `iasovoice serve` (stand-in engines, so the call stores a note in seconds), reads the note and
the transcript over HTTP with the call's token and with a forged one, and finds each read in the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import threading
import time
from pathlib import Path

import jwt
import pytest

from iasovoice.audio.files import load_audio
from iasovoice.audit import GENESIS, AuditLog, forwarded_for
from iasovoice.cli import main as cli_main
from iasovoice.client import place_call
from iasovoice.config import load_config
from iasovoice.errors import ConfigError
from tests.paths import REPO_AUDIO
from tests.server import SECRET, RunningServer

PHONE = "+15550104477"  # a fictional (555-01xx) number


def _read(log: AuditLog, call_id: str = "call-1", **overrides: object) -> dict:
    fields = {"action": "read", "record": "note", "call_id": call_id, "outcome": "served",
              "claims": {"sub": call_id}, "client": "127.0.0.1"}
    return log.append(**{**fields, **overrides})  # type: ignore[arg-type]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


# ------------------------------------------------------------------------------------------- unit
def test_entries_are_chained_json_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "reads.jsonl")  # the directory is created
    first = _read(log, claims={"sub": "call-1", "name": "Dr Ada Reader", "iss": "clinic-portal", "aud": "iaso"})
    second = _read(log, "call-2", record="transcript", outcome="not_found", claims={"sub": "call-2"})
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600

    lines = _lines(log.path)
    assert [json.loads(line) for line in lines] == [first, second]
    assert first["seq"] == 0 and first["prev"] == GENESIS
    assert second["seq"] == 1 and second["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert first["actor"] == {"sub": "call-1", "name": "Dr Ada Reader", "iss": "clinic-portal", "aud": "iaso"}
    assert first["client"] == "127.0.0.1" and first["action"] == "read" and first["call_id"] == "call-1"
    assert first["time"].endswith("Z") and "T" in first["time"]

    result = log.verify()
    assert result.ok and result.entries == 2 and result.head == hashlib.sha256(lines[1]).hexdigest()


def test_a_reopened_log_goes_on_with_the_same_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _read(AuditLog(path))
    again = _read(AuditLog(path), "call-2")  # a gateway restart
    assert again["seq"] == 1 and again["prev"] == hashlib.sha256(_lines(path)[0]).hexdigest()
    assert AuditLog(path).verify().ok


def test_refused_reads_name_no_reader(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = _read(log, outcome="refused", claims=None, reason="bad_signature", forwarded=["203.0.113.9", "junk"])
    assert entry["actor"] is None and entry["reason"] == "bad_signature"
    assert entry["forwarded_for"] == ["203.0.113.9"]  # what is not an address is dropped, not copied
    assert forwarded_for("198.51.100.7, call me +15550104477, 10.0.0.2") == ["198.51.100.7", "10.0.0.2"]
    bad_id = _read(log, None, outcome="refused", claims=None, reason="bad_call_id")
    assert bad_id["call_id"] is None


@pytest.mark.parametrize(
    ("edit", "broken_at"),
    [("change-outcome", 3), ("delete-line", 2), ("insert-line", 3), ("reorder", 2)],
)
def test_tampering_breaks_the_chain(tmp_path: Path, edit: str, broken_at: int) -> None:
    """An edit shows at the line after it (whose `prev` no longer matches); see the module doc for the tail."""
    log = AuditLog(tmp_path / "audit.jsonl")
    for index in range(4):
        _read(log, f"call-{index}")
    lines = _lines(log.path)
    if edit == "change-outcome":
        lines[1] = lines[1].replace(b'"served"', b'"not_found"')
    elif edit == "delete-line":
        del lines[1]
    elif edit == "insert-line":
        forged = json.loads(lines[1])
        forged["call_id"] = "forged-call"
        lines.insert(2, json.dumps(forged).encode())
    else:
        lines[1], lines[2] = lines[2], lines[1]
    log.path.write_bytes(b"\n".join(lines) + b"\n")

    result = log.verify()
    assert (result.ok, result.line) == (False, broken_at)
    assert result.problem


def test_no_phi_can_be_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(TypeError):
        _read(log, transcript="I have chest pain")  # no such field
    with pytest.raises(ValueError, match="fixed label"):
        _read(log, reason="caller said: chest pain")
    with pytest.raises(ValueError, match="call id rule"):
        _read(log, PHONE)  # a number where the call id goes
    with pytest.raises(ValueError):
        _read(log, record="state")  # a live call's checkpoint is not a user read
    with pytest.raises(ValueError):
        _read(log, outcome="served with text")

    # Claims beyond the identifying ones are never copied; a number in an identifying claim is replaced.
    entry = _read(log, claims={"sub": "call-1", "phone_number": PHONE, "patient": "Jane Doe",
                               "name": f"call me on {PHONE}", "azp": PHONE.lstrip("+"), "transcript": "chest pain"})
    redacted = "[redacted: looks like a phone number]"
    assert entry["actor"] == {"sub": "call-1", "name": redacted, "azp": redacted}
    sid = "CA" + "0123456789abcdef" * 2  # a Twilio CallSid as the call id: digits, but not a number
    assert _read(log, sid, claims={"sub": sid})["actor"] == {"sub": sid}
    text = log.path.read_text()
    assert "5550104477" not in text and "Jane" not in text and "chest" not in text
    assert log.verify().ok and log.verify().entries == 2  # the refused calls wrote nothing


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path), AuditLog(path)]  # two writers (as two gateway processes would be)

    def write(index: int) -> None:
        for n in range(25):
            _read(logs[index % 2], f"call-{index}-{n}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = logs[0].verify()
    assert result.ok and result.entries == 100
    assert [entry["seq"] for entry in logs[0].entries()] == list(range(100))


def test_a_torn_last_line_is_reported_and_the_log_goes_on(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _read(log)
    with log.path.open("ab") as handle:
        handle.write(b'{"seq":1,"time":"2')  # a crash in the middle of a write
    entry = _read(log, "call-2")
    assert entry["seq"] == 2
    assert json.loads(_lines(log.path)[-1]) == entry
    result = log.verify()
    assert (result.ok, result.line, result.problem) == (False, 2, "not a JSON entry")


def test_audit_config_is_validated(tmp_path: Path) -> None:
    assert load_config().audit.path == "var/audit.jsonl"
    assert load_config(overrides=[f"audit.path={tmp_path / 'a.jsonl'}"]).audit.path.endswith("a.jsonl")
    for bad in ("''", "var/", "var/audit/.."):
        with pytest.raises(ConfigError, match="audit.path"):
            load_config(overrides=[f"audit.path={bad}"])
    with pytest.raises(ConfigError, match="audit.nope"):
        load_config(overrides=["audit.nope=1"])


def test_audit_command_prints_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    _read(log, claims={"sub": "call-1", "name": "Dr Ada Reader"})
    _read(log, "call-2", outcome="refused", claims=None, reason="expired")
    base = ["--set", f"audit.path={path}", "audit"]

    assert cli_main(base) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert "call-1: served by sub=call-1, name=Dr Ada Reader from 127.0.0.1" in out[0]
    assert "call-2: refused (expired) by unknown (refused token)" in out[1]
    assert cli_main([*base, "--call-id", "call-2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "refused"
    assert cli_main([*base, "--verify"]) == 0
    assert "2 entries, chain intact" in capsys.readouterr().out

    path.write_bytes(path.read_bytes().replace(b"Dr Ada Reader", b"Someone Else!"))
    assert cli_main([*base, "--verify"]) == 1
    assert "chain broken at line 2" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- end to end
@pytest.mark.e2e
def test_gateway_audits_served_and_refused_reads(standin_server: RunningServer) -> None:
    server = standin_server
    call_id = "audit-e2e-call"
    speech = load_audio(REPO_AUDIO / "LDC93S1_8k.wav", 8000)
    report = asyncio.run(place_call(server.url, call_id, [speech], 8000, token=server.token(call_id),
                                    reply_timeout_s=20.0, note_timeout_s=60.0))
    assert report.note_ready, report.errors
    reader = jwt.encode(
        {"sub": call_id, "exp": int(time.time()) + 300, "name": "Dr Ada Reader", "iss": "clinic-portal",
         "phone_number": PHONE},
        SECRET.encode(), algorithm="HS256",
    )
    forged = jwt.encode({"sub": call_id, "exp": int(time.time()) + 300, "name": "Mallory"},
                        b"not-the-gateway-secret-but-32-bytes-long", algorithm="HS256")
    before = len(_lines(server.audit_path))

    assert server.get(f"/calls/{call_id}/note?token={reader}")[0] == 200
    assert server.get(f"/calls/{call_id}/transcript?token={reader}")[0] == 200
    assert server.get(f"/calls/{call_id}/note?token={forged}")[0] == 401
    assert server.get(f"/calls/never-called/transcript?token={server.token('never-called')}")[0] == 404

    entries = [json.loads(line) for line in _lines(server.audit_path)[before:]]
    summary = [(e["record"], e["call_id"], e["outcome"], e["reason"]) for e in entries]
    assert summary == [
        ("note", call_id, "served", None),
        ("transcript", call_id, "served", None),
        ("note", call_id, "refused", "bad_signature"),
        ("transcript", "never-called", "not_found", None),
    ]
    assert entries[0]["actor"] == {"sub": call_id, "name": "Dr Ada Reader", "iss": "clinic-portal"}
    assert entries[2]["actor"] is None, "a forged token's claims are never taken for the reader"
    assert all(e["client"] == "127.0.0.1" for e in entries)
    text = server.audit_path.read_text()
    assert "5550104477" not in text and "Mallory" not in text
    assert "stand-in" not in text, "no transcript or note text"
    assert AuditLog(server.audit_path).verify().ok
