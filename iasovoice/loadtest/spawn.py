"""`--spawn`: start `iasovoice serve` on a free loopback port for a self-contained load test.

The server runs as its own process group (as tests/server.py does) with its log in the run's output
folder; the load tester reads per-call frame counts from that log. It is always stopped with SIGTERM
and waited for, and killed only if it does not exit in time, so no server outlives the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from iasovoice.loadtest.audio import LoadTestError
from iasovoice.loadtest.runner import http_status

STOP_TIMEOUT_S = 90.0


@dataclass
class SpawnedServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int, out_dir: Path, config_path: str | None, overrides: list[str]) -> list[str]:
    """Storage and metrics go into the run's folder unless the caller overrides them; host and port always win."""
    server_dir = out_dir / "server"
    settings = [
        f"storage.local.root={server_dir / 'calls'}",
        f"metrics.local_path={server_dir / 'metrics.jsonl'}",
        *overrides,
        "server.host=127.0.0.1",
        f"server.port={port}",
    ]
    command = [sys.executable, "-m", "iasovoice.cli"]
    if config_path:
        command += ["--config", config_path]
    for setting in settings:
        command += ["--set", setting]
    return [*command, "serve"]


def stop(server: SpawnedServer, timeout_s: float = STOP_TIMEOUT_S) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)
    return int(server.process.returncode)


@contextmanager
def spawned_server(out_dir: Path, config_path: str | None, overrides: list[str], ready_timeout_s: float,
                   progress: Callable[[str], None]) -> Iterator[SpawnedServer]:
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = out_dir / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(serve_command(port, out_dir, config_path, overrides), stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = SpawnedServer(process, port, log_path)
    progress(f"started `iasovoice serve` on port {port} (pid {process.pid}); log: {log_path}")
    try:
        _wait_ready(server, ready_timeout_s)
        progress(f"server ready at {server.url}")
        yield server
    finally:
        code = stop(server)
        progress(f"server stopped (exit code {code})")


def _wait_ready(server: SpawnedServer, timeout_s: float) -> None:
    health = f"http://127.0.0.1:{server.port}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            last = server.log_tail(1) or "(empty log)"
            raise LoadTestError(f"the spawned server exited with code {code} before it was ready: {last} "
                                f"(full log: {server.log_path})")
        try:
            if http_status(health, 2.0) == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise LoadTestError(f"the spawned server was not ready after {timeout_s:.0f} s (log: {server.log_path})")
