"""Start and stop `iasovoice serve` for one benchmark, as a subprocess in its own session.

Each bench owns its server: a fresh Ray, its own temporary storage, auth off (loopback only). Stopping
sends SIGTERM (the server shuts Serve and its Ray down), then kills the whole process group and any
descendant still alive, so a bench never leaves a worker behind, and never touches another Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import descendants
from iasovoice.serverproc import ServerStartError, free_port, launch, log_tail, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchServer:
    process: subprocess.Popen[bytes]
    port: int
    root: Path
    log_path: Path
    pool_size: int = 0
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=10) as response:
            return json.loads(response.read())

    async def wait_pool(self, timeout_s: float = 180.0) -> dict:
        """Wait until the warm pool is full again (no actor starting): the next calls bind at once."""
        import asyncio

        deadline = time.monotonic() + timeout_s
        while True:
            stats = await asyncio.to_thread(self.health)
            if stats.get("starting", 0) == 0 and stats.get("warm", 0) >= self.pool_size:
                return stats
            if time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.5)

    async def wait_active(self, calls: int, timeout_s: float = 180.0) -> dict:
        """Wait until the directory reports `calls` bound calls (their actors are serving them)."""
        import asyncio

        deadline = time.monotonic() + timeout_s
        while True:
            stats = await asyncio.to_thread(self.health)
            if stats.get("active", 0) >= calls or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.5)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout_s: float = 60.0) -> None:
        tree = descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        for sig_target in ("group", "tree"):
            try:
                if sig_target == "group":
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    for pid in tree:
                        os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()


# Stand-in engines and an energy VAD: the platform alone, nothing here costs what a model costs.
STANDIN = [
    "asr.engine=standin", "llm.engine=standin", "tts.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0",
    "dialogue.engine=rules",  # constant-time stand-ins: no Rasa beside them
]


def start_server(overrides: list[str], pool_size: int = 2, timeout_s: float = 300.0) -> BenchServer:
    tmp = tempfile.TemporaryDirectory(prefix="iasovoice-bench-")
    root = Path(tmp.name)
    port = free_port()
    settings = [
        f"server.port={port}",
        # Benchmarks measure the call path on loopback; token checks happen once per call, off the frame path.
        "server.auth.mode=off",
        "server.auth.allow_unauthenticated=true",
        f"storage.local.root={root / 'calls'}",
        f"storage.local.key_file={root / 'storage.key'}",
        f"metrics.local_path={root / 'metrics.jsonl'}",
        "call.release_grace_s=1",
        f"call.pool_size={pool_size}",
        *overrides,
    ]
    log_path = root / "server.log"
    process = launch(settings, log_path, cwd=ROOT)
    server = BenchServer(process, port, root, log_path, pool_size, tmp)
    try:
        wait_healthy(process, port, log_path, timeout_s)
    except ServerStartError:
        server.stop()
        raise
    return server
