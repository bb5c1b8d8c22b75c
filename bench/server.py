"""Start and stop `iasovoice serve` for one benchmark, as a subprocess in its own session.

Each bench owns its server: a fresh Ray, its own temporary storage, auth off (loopback only). Stopping
sends SIGTERM (the server shuts Serve and its Ray down), then kills the whole process group and any
descendant still alive, so a bench never leaves a worker behind, and never touches another Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import descendants

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

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
STANDIN = ["asr.engine=standin", "llm.engine=standin", "tts.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0"]


def start_server(overrides: list[str], pool_size: int = 2, timeout_s: float = 300.0) -> BenchServer:
    tmp = tempfile.TemporaryDirectory(prefix="iasovoice-bench-")
    root = Path(tmp.name)
    port = free_port()
    settings = [
        f"server.port={port}",
        "server.auth_secret_env=null",
        f"storage.local.root={root / 'calls'}",
        f"storage.local.key_file={root / 'storage.key'}",
        f"metrics.local_path={root / 'metrics.jsonl'}",
        "call.release_grace_s=1",
        f"call.pool_size={pool_size}",
        *overrides,
    ]
    args = [sys.executable, "-m", "iasovoice.cli"]
    for item in settings:
        args += ["--set", item]
    args.append("serve")
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = BenchServer(process, port, root, log_path, pool_size, tmp)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
        try:
            server.health()
            return server
        except OSError:
            time.sleep(0.5)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"server not ready after {timeout_s} s:\n{tail}")
