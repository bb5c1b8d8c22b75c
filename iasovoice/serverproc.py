"""`iasovoice serve` as a child process: started, awaited until healthy, and stopped with its whole tree.

One implementation for everything that needs a private server: `iasovoice loadtest --spawn`, the
benchmarks and the end-to-end tests. The child runs in its own session so stopping it can take every
Ray process it started with it, and never touches another Ray on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from iasovoice.errors import IasoVoiceError


class ServerStartError(IasoVoiceError):
    """The child server exited or did not become healthy; the message carries its last log line(s)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def launch(
    overrides: list[str],
    log_path: Path,
    config_path: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `iasovoice [--config C] --set k=v … serve`, its output in `log_path`.

    Each child gets its own ports for a managed Rasa (unless the overrides name them), so servers
    started side by side (tests, benchmarks) never collide on Rasa's default port.
    """
    args = [sys.executable, "-m", "iasovoice.cli"]
    if config_path:
        args += ["--config", config_path]
    if not any(o.startswith("dialogue.rasa.url=") for o in overrides):
        overrides = [*overrides, f"dialogue.rasa.url=http://127.0.0.1:{free_port()}"]
    if not any(o.startswith("dialogue.rasa.action_port=") for o in overrides):
        overrides = [*overrides, f"dialogue.rasa.action_port={free_port()}"]
    for override in overrides:
        args += ["--set", override]
    args.append("serve")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def wait_healthy(process: subprocess.Popen[bytes], port: int, log_path: Path, timeout_s: float) -> None:
    """Poll `/healthz` until it answers 200; fail early, with the log's tail, if the child exits."""
    health = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServerStartError(
                f"`iasovoice serve` exited with code {code} before it was ready (log: {log_path}):\n"
                f"{log_tail(log_path, 20)}"
            )
        try:
            with urllib.request.urlopen(health, timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServerStartError(f"`iasovoice serve` was not ready after {timeout_s:.0f} s (log: {log_path})")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 90.0) -> int:
    """SIGTERM (a clean shutdown of Serve and Ray), then SIGKILL the session if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
    return int(process.returncode)
