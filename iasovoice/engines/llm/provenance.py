"""Which weights wrote a note: the model's real name and a sha256 of its files, stamped into every note.

A clinic that finds a bad note must be able to say which model wrote it, down to the file: a name in a
config can be re-pointed at other weights, a checksum cannot. The packaged model's sha256 is pinned
(and verified when it is joined); any other weights are hashed once when the replica starts and the
digest is cached beside the model cache keyed by path, size and mtime, so a restart does not re-read
gigabytes. A directory (vLLM's Hugging Face layout) is digested as a manifest: every file's relative
path, size and sha256, sorted, hashed together.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from iasovoice.engines.llm.packaged_weights import get_spec, sha256_file

logger = logging.getLogger(__name__)

STANDIN_NAME = "standin"


@dataclass(frozen=True)
class ModelProvenance:
    """The note's author: a name a person can read and the sha256 that pins it (None: not on disk here)."""

    name: str
    sha256: str | None


def packaged_provenance(packaged_model: str) -> ModelProvenance:
    spec = get_spec(packaged_model)
    return ModelProvenance(spec.title or spec.name, spec.sha256)


def weights_provenance(path: Path, cache_dir: Path) -> ModelProvenance:
    """Name and digest of weights on disk (a GGUF file or a model directory); a hub id gives no digest.

    vLLM also takes a model id it resolves itself; with no local path there is nothing to hash here,
    and the note says so by its missing digest rather than by a guess.
    """
    if not path.exists():
        logger.warning("Model %s is not a local path; notes will carry its name without a sha256", path)
        return ModelProvenance(str(path), None)
    return ModelProvenance(path.name, _cached_digest(path.resolve(), cache_dir))


def _cached_digest(path: Path, cache_dir: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    key = [[str(f.relative_to(path) if path.is_dir() else f.name), f.stat().st_size, f.stat().st_mtime_ns]
           for f in files]
    stamp_path = cache_dir / "provenance" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.json"
    try:
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("path") == str(path) and stamp.get("files") == key:
            return str(stamp["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    started = time.perf_counter()
    digest = _digest(path, files)
    logger.info("Hashed the weights at %s in %.1f s", path, time.perf_counter() - started)
    try:
        stamp_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"path": str(path), "files": key, "sha256": digest}))
        os.replace(tmp, stamp_path)
    except OSError as exc:  # a read-only cache costs a re-hash at the next start, nothing else
        logger.warning("Could not cache the weights digest in %s: %s", stamp_path.parent, exc)
    return digest


def _digest(path: Path, files: list[Path]) -> str:
    if not path.is_dir():
        return sha256_file(path, f"Hashing {path.name}", path.stat().st_size, progress=False)
    manifest = hashlib.sha256()
    for file in files:
        file_digest = sha256_file(file, f"Hashing {file.name}", file.stat().st_size, progress=False)
        manifest.update(f"{file.relative_to(path)}\0{file.stat().st_size}\0{file_digest}\n".encode())
    return manifest.hexdigest()
