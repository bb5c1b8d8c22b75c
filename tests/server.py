"""A real IasoVoice server for end-to-end tests: `iasovoice serve` in a subprocess on a free port.

Real local Ray, real Serve deployments with the packaged Whisper and LLM weights, real Piper TTS and the
real encrypted store (in a temporary directory). Token auth is on (HS256 JWTs), as in production.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gateway.auth import call_token
from iasovoice.serverproc import ServerStartError, free_port, launch, log_tail, stop, wait_healthy

SECRET = "e2e-test-secret-of-at-least-32-bytes"  # HS256 secrets under 32 bytes are refused
SECRET_ENV = "IASOVOICE_TEST_CALL_SECRET"
# Overrides for a server that tests the gateway, not the models: constant-time stand-in engines, no Rasa,
# and the echo-test call mode (no greeting, VAD or engines: each caller frame comes back as agent audio).
STANDIN_ECHO = [
    "asr.engine=standin", "llm.engine=standin", "tts.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0",
    "vad.engine=energy", "dialogue.engine=rules", "call.loopback=true", "call.pool_size=1",
]
# The whole call path (VAD, ASR, reply, TTS, transcript and SOAP note) on constant-time stand-in engines:
# a call records every per-call metric and stores a note in seconds, with no model loaded.
STANDIN_CALLS = [
    "asr.engine=standin", "llm.engine=standin", "tts.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0",
    "vad.engine=energy", "dialogue.engine=rules", "call.pool_size=1",
]


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    root: Path
    log_path: Path

    @property
    def audit_path(self) -> Path:
        """The server's audit log of note/transcript reads (`audit.path`, set by `start_server`)."""
        return self.root / "audit.jsonl"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, call_id: str, attributes: dict[str, str] | None = None) -> str:
        return call_token(SECRET.encode(), call_id, attributes=attributes)

    def connect_url(self, call_id: str, query: str = "") -> str:
        extra = f"&{query}" if query else ""
        return f"{self.url}/connect/{call_id}?token={self.token(call_id)}{extra}"

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{self.http}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def note(self, call_id: str, timeout_s: float = 120.0) -> dict | None:
        """The stored note, polling until it exists (it is written after hang-up)."""
        return self.record(call_id, "note", timeout_s)

    def record(self, call_id: str, kind: str, timeout_s: float = 120.0) -> dict | None:
        """A stored record (`note` or `transcript`), polling until it exists."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, body = self.get(f"/calls/{call_id}/{kind}?token={self.token(call_id)}")
            if status == 200:
                return body
            time.sleep(0.5)
        return None

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)


def start_server(
    root: Path, extra: list[str] | None = None, timeout_s: float = 600.0, env: dict[str, str] | None = None
) -> RunningServer:
    """`env` adds to the child's environment, e.g. how to reach a cluster it joins (tests/fake_cluster.py)."""
    port = free_port()
    log_path = root / "server.log"
    overrides = [
        f"server.port={port}",
        "server.auth.mode=jwt-hs256",
        f"server.auth.secret_env={SECRET_ENV}",
        f"storage.local.root={root / 'calls'}",
        f"storage.local.key_file={root / 'storage.key'}",
        f"metrics.local_path={root / 'metrics.jsonl'}",
        f"audit.path={root / 'audit.jsonl'}",
        "metrics.flush_interval_s=1",
        "call.pool_size=2",
        "call.release_grace_s=1",
        "server.drain_timeout_s=5",  # a test server's stop does not wait half a minute for a live call
        *(extra or []),
    ]
    process = launch(overrides, log_path, env={**(env or {}), SECRET_ENV: SECRET})
    server = RunningServer(process, port, root, log_path)
    try:
        wait_healthy(process, port, log_path, timeout_s)
    except ServerStartError:
        stop(process)
        raise
    return server


def stop_server(server: RunningServer, timeout_s: float = 90.0) -> int:
    return stop(server.process, timeout_s)
