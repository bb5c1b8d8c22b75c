"""`--spawn`: start `iasovoice serve` on a free loopback port for a self-contained load test.

The server runs as its own process group (as tests/server.py does) with its log in the run's output
folder; the load tester reads per-call frame counts from that log. It is always stopped with SIGTERM
and waited for, and killed only if it does not exit in time, so no server outlives the run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from iasovoice import serverproc
from iasovoice.loadtest.audio import LoadTestError

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
        return serverproc.log_tail(self.log_path, lines)


def serve_overrides(port: int, out_dir: Path, overrides: list[str]) -> list[str]:
    """Storage and metrics go into the run's folder unless the caller overrides them; host and port always win."""
    server_dir = out_dir / "server"
    return [
        f"storage.local.root={server_dir / 'calls'}",
        f"metrics.local_path={server_dir / 'metrics.jsonl'}",
        *overrides,
        "server.host=127.0.0.1",
        f"server.port={port}",
    ]


def stop(server: SpawnedServer, timeout_s: float = STOP_TIMEOUT_S) -> int:
    return serverproc.stop(server.process, timeout_s)


@contextmanager
def spawned_server(out_dir: Path, config_path: str | None, overrides: list[str], ready_timeout_s: float,
                   progress: Callable[[str], None]) -> Iterator[SpawnedServer]:
    out_dir.mkdir(parents=True, exist_ok=True)
    port = serverproc.free_port()
    log_path = out_dir / "server.log"
    process = serverproc.launch(serve_overrides(port, out_dir, overrides), log_path, config_path)
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
    try:
        serverproc.wait_healthy(server.process, server.port, server.log_path, timeout_s)
    except serverproc.ServerStartError as error:
        raise LoadTestError(f"the spawned server failed: {error}") from None
