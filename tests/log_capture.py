"""Every log file a running `iasovoice serve` writes, and what was appended to each since a mark.

A call's log output is spread over processes: the serve process (gateway, runtime; `RunningServer.log_path`),
Ray's session directory (each worker's `worker-*.out/err`, Serve's replica logs, raylet and GCS logs)
and the managed Rasa's log directory. Ray picks its session directory at start, and other Rays (other
test runs) may be up on the same machine, so it is found from the server's own process: the GCS server
Ray starts is its child, with the session's log directory on its command line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import children
from iasovoice.config import RasaConfig, resolve_path
from tests.server import RunningServer


def ray_log_dir(server_pid: int) -> Path:
    """`<session>/logs` of the Ray that the server process started (its GCS server says where)."""
    for child in children(server_pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            if arg.startswith(b"--log_dir="):
                return Path(os.fsdecode(arg.split(b"=", 1)[1]))
    # Ray names the session after the driver's pid: session_<date>_<time>_<pid>.
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"
    found = sorted(root.glob(f"session_*_{server_pid}"))
    if found:
        return found[-1] / "logs"
    raise AssertionError(f"no Ray session found for server pid {server_pid}")


@dataclass
class LogFiles:
    """The server's log files with their sizes at a mark; `since_mark` reads only what came after."""

    server: RunningServer
    marks: dict[Path, int] = field(default_factory=dict)

    def files(self) -> list[Path]:
        # The test servers keep Rasa's default log directory (configs/app.yaml has the same value).
        rasa_logs = resolve_path(RasaConfig().log_dir)
        candidates = [self.server.log_path, *ray_log_dir(self.server.process.pid).rglob("*")]
        candidates += [p for p in rasa_logs.glob("*") if p.suffix in (".log", ".out")]
        return sorted(p for p in candidates if p.is_file())

    def mark(self) -> None:
        self.marks = {path: path.stat().st_size for path in self.files()}

    def since_mark(self) -> dict[Path, str]:
        """Text appended to each file since `mark()` (whole files that are new since)."""
        out: dict[Path, str] = {}
        for path in self.files():
            start = self.marks.get(path, 0)
            try:
                with path.open("rb") as handle:
                    if handle.seek(0, os.SEEK_END) < start:
                        start = 0  # rotated or truncated since the mark
                    handle.seek(start)
                    data = handle.read()
            except OSError:
                continue
            if data:
                out[path] = data.decode("utf-8", errors="replace")
        return out
