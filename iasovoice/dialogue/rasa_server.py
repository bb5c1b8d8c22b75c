"""Rasa as its own service beside IasoVoice: train when the data changed, start, wait, stop.

Rasa 3.6 runs on Python 3.8-3.10 and the project on 3.11, so Rasa lives in its own virtualenv
(`dialogue.rasa.venv`, made by `make setup`) and runs as separate processes: `rasa run --enable-api`
on loopback and `rasa run actions` for the forms' validation. A model is named by a hash of everything
it is trained from, so a restart with unchanged data loads the cached model instead of training again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

from iasovoice.config import RasaConfig, resolve_path
from iasovoice.errors import ConfigError, IasoVoiceError

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
RASA_VERSION = "3.6.21"
# Files a model is trained from; a change to any of them means a new model.
_TRAINING_INPUTS = ("config.yml", "domain.yml", "data")
_KEEP_MODELS = 3


class RasaServiceError(IasoVoiceError):
    """Rasa could not be trained or started; the message says what to do."""


def rasa_executable(config: RasaConfig) -> Path:
    """The `rasa` command of the project's Rasa venv, or an error naming how to make it."""
    venv = resolve_path(config.venv)
    rasa = venv / "bin" / "rasa"
    if not rasa.is_file():
        raise ConfigError(
            f"dialogue.rasa.venv: no Rasa installation at {venv} (expected {rasa}). Run `make setup` "
            "(it needs a Python 3.10 interpreter: `python3.10` on PATH or pyenv's 3.10), point "
            "dialogue.rasa.venv at a venv with rasa==3.6.21, set dialogue.rasa.manage: false with "
            "dialogue.rasa.url of a running Rasa, or set dialogue.engine: rules to run without Rasa."
        )
    return rasa


def _training_files(project: Path) -> Iterator[Path]:
    for name in _TRAINING_INPUTS:
        path = project / name
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
        elif path.is_file():
            yield path


def training_fingerprint(project: Path) -> str:
    """A hash of the Rasa version and every training input (names and bytes), stable across machines."""
    digest = hashlib.sha256(RASA_VERSION.encode())
    for path in _training_files(project):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(config: RasaConfig) -> Path:
    project = resolve_path(config.project_dir)
    return resolve_path(config.model_dir) / f"iasovoice-{training_fingerprint(project)}.tar.gz"


def _env(config: RasaConfig, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    project = resolve_path(config.project_dir)
    env.update({
        "PYTHONPATH": str(project),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        # Rasa's training cache (unchanged components are not retrained) stays out of the source tree.
        "RASA_CACHE_DIRECTORY": str(resolve_path(config.model_dir).parent / "cache"),
        "PYTHONWARNINGS": "ignore",
    })
    # The call path never waits on Python 3.11's own site-packages: Rasa's venv stands alone.
    env.pop("PYTHONHOME", None)
    env.pop("VIRTUAL_ENV", None)
    if threads is not None:
        env["TF_INTRA_OP_PARALLELISM_THREADS"] = str(threads)
        env["TF_INTER_OP_PARALLELISM_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _load_prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Bound once here: the child between fork and exec must not import or allocate (other threads may hold locks).
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if IasoVoice dies, so no orphan Rasa holds its port."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One trainer at a time per model directory (two servers starting at once share the result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_model(config: RasaConfig, progress: Progress | None = None) -> Path:
    """The trained model for the current data: the cached one, or trained now (minutes, with progress)."""
    say = progress or (lambda message: log.info("%s", message))
    target = model_path(config)
    if target.is_file():
        return target
    rasa = rasa_executable(config)
    project = resolve_path(config.project_dir)
    with _lock(target.parent / ".train.lock"):
        if target.is_file():
            return target
        log_file = resolve_path(config.log_dir) / "train.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        say(f"training the Rasa model (the training data changed; a few minutes on 2 cores; log: {log_file})")
        started = time.monotonic()
        command = [
            str(rasa), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", str(target.parent), "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ]
        with open(log_file, "w") as out:
            process = subprocess.Popen(
                command, cwd=project, stdout=out, stderr=subprocess.STDOUT, env=_env(config, None),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl bound before the fork
            )
            try:
                while process.poll() is None:
                    time.sleep(1.0)
                    elapsed = time.monotonic() - started
                    if int(elapsed) % 30 == 0:
                        say(f"  still training Rasa ({elapsed:.0f} s)")
                    if elapsed > config.start_timeout_s:
                        _terminate(process)
                        raise RasaServiceError(
                            f"Rasa training took longer than dialogue.rasa.start_timeout_s "
                            f"({config.start_timeout_s:.0f} s); see {log_file}"
                        )
            except BaseException:
                _terminate(process)
                raise
        if process.returncode != 0 or not target.is_file():
            tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-15:])
            raise RasaServiceError(f"`rasa train` failed (exit {process.returncode}); see {log_file}:\n{tail}")
        say(f"Rasa model trained in {time.monotonic() - started:.0f} s: {target.name}")
        _prune_models(target)
    return target


def _prune_models(keep: Path) -> None:
    models = sorted(keep.parent.glob("iasovoice-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in models[_KEEP_MODELS:]:
        if old != keep:
            old.unlink(missing_ok=True)


def _terminate(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Stop a process group we started: SIGTERM, then SIGKILL after `grace_s`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def http_json(url: str, timeout_s: float, token: str | None = None) -> dict[str, object] | None:
    """GET a JSON document; None when the service is not (yet) answering."""
    if token:
        url += ("&" if "?" in url else "?") + f"token={token}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = json.loads(response.read() or b"{}")
            return body if isinstance(body, dict) else {}
    except (urllib.error.URLError, OSError, ValueError):
        return None


class RasaService:
    """The managed Rasa server and action server of one `iasovoice serve`."""

    def __init__(self, config: RasaConfig, progress: Progress | None = None) -> None:
        self.config = config
        self._progress = progress or (lambda message: log.info("%s", message))
        self._processes: list[subprocess.Popen[bytes]] = []
        self._commands: list[tuple[str, list[str]]] = []
        self._logs: list[object] = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        self.model: Path | None = None

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.config.action_port}/webhook"

    @property
    def token(self) -> str | None:
        name = self.config.auth_token_env
        return os.environ.get(name) if name else None

    def start(self) -> None:
        """Train if needed and launch both processes; `wait_ready` blocks until they answer."""
        parsed = urlparse(self.config.url)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(
                f"dialogue.rasa.url: a managed Rasa binds loopback only, got {self.config.url!r} "
                "(set dialogue.rasa.manage: false to use a Rasa service elsewhere)"
            )
        if http_json(f"{self.config.url}/status", 1.0, self.token) is not None:
            raise RasaServiceError(
                f"something already answers at {self.config.url}: stop it, or set dialogue.rasa.manage: false "
                "to use it as the dialogue server"
            )
        rasa = rasa_executable(self.config)
        self.model = ensure_model(self.config, self._progress)
        project = resolve_path(self.config.project_dir)
        log_dir = resolve_path(self.config.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(log_dir, 0o700)  # Rasa's debug logs would carry caller text
        # The action server's port is per server (tests run several), so its endpoints file is written here.
        endpoints = log_dir / f"endpoints-{parsed.port or 5005}.yml"
        endpoints.write_text(
            (project / "endpoints.yml").read_text().replace("${ACTION_SERVER_URL}", self.action_url)
        )
        server = [
            str(rasa), "run", "--enable-api", "--model", str(self.model), "--interface", "127.0.0.1",
            "--port", str(parsed.port or 5005), "--endpoints", str(endpoints), "--credentials",
            "credentials.yml", "--cors", "", "--log-file", str(log_dir / "rasa.log"),
        ]
        if self.token:
            server += ["--auth-token", self.token]
        actions = [str(rasa), "run", "actions", "--actions", "actions", "--port", str(self.config.action_port)]
        self._progress("starting Rasa (dialogue server and action server)")
        self._commands = [("actions", actions), ("server", server)]
        self._processes = [self._launch(name, command) for name, command in self._commands]

    def _launch(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log_dir = resolve_path(self.config.log_dir)
        out = open(log_dir / f"{name}.out", "a")  # noqa: SIM115 - closed in stop()
        self._logs.append(out)
        return subprocess.Popen(
            command, cwd=resolve_path(self.config.project_dir), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=_env(self.config, 1), start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl bound before the fork
        )

    def _supervise(self) -> None:
        """Restart a Rasa process that died; calls meanwhile go on without it (the client degrades)."""
        while not self._stopping.wait(2.0):
            for index, process in enumerate(self._processes):
                if process.poll() is None or self._stopping.is_set():
                    continue
                name, command = self._commands[index]
                self.restarts += 1
                log.warning("Rasa %s exited (code %s); restarting it (restart %d)", name, process.returncode,
                            self.restarts)
                self._processes[index] = self._launch(name, command)

    def wait_ready(self) -> None:
        """Block until Rasa has loaded its model and the action server answers, or fail clearly."""
        deadline = time.monotonic() + self.config.start_timeout_s
        status_url = f"{self.config.url}/status"
        health_url = f"http://127.0.0.1:{self.config.action_port}/health"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RasaServiceError(
                        f"a Rasa process exited with code {process.returncode} while starting; see "
                        f"{resolve_path(self.config.log_dir)}/server.out and actions.out"
                    )
            status = http_json(status_url, 2.0, self.token)
            if status and status.get("model_file") and http_json(health_url, 2.0) is not None:
                self._progress(f"Rasa ready at {self.config.url}")
                if self._supervisor is None:
                    self._supervisor = threading.Thread(target=self._supervise, name="rasa-supervisor", daemon=True)
                    self._supervisor.start()
                return
            time.sleep(0.5)
        self.stop()
        raise RasaServiceError(
            f"Rasa did not answer at {status_url} within dialogue.rasa.start_timeout_s "
            f"({self.config.start_timeout_s:.0f} s)"
        )

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None
        for process in reversed(self._processes):
            _terminate(process)
        self._processes.clear()
        for out in self._logs:
            with contextlib.suppress(Exception):
                out.close()  # type: ignore[attr-defined]
        self._logs.clear()

    def __enter__(self) -> Self:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_rasa_command(config: RasaConfig, args: list[str], out_file: Path) -> int:
    """Run one `rasa …` command in the project (e.g. `test core`), its output in `out_file`."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "w") as out:
        return subprocess.call(
            [str(rasa_executable(config)), *args], cwd=resolve_path(config.project_dir), stdout=out,
            stderr=subprocess.STDOUT, env=_env(config, None),
        )


if __name__ == "__main__":  # `python -m iasovoice.dialogue.rasa_server`: train only (used by make)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from iasovoice.config import load_config

    print(ensure_model(load_config(sys.argv[1] if len(sys.argv) > 1 else None).dialogue.rasa))
