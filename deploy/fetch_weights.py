#!/usr/bin/env python3
"""Put one model's files on this node from the configured S3 prefix, each checked against its sha256.

ray_cluster.yaml's GPU node types run, at set-up:

    python deploy/fetch_weights.py fetch --config configs/production.yaml --model llm   # or asr

The files are the manifest's (`weights.manifest`, sha256sum format) under the path the engine loads
(`llm.vllm.model`, `asr.model_path`) relative to `weights.root`; each is downloaded from
`weights.source` to a temporary name beside its destination, hashed, and renamed into place only if
the hash is the manifest's. A mismatch stops the set-up (exit 1) with the file named and leaves
nothing behind: a node never serves weights nobody reviewed. A file already in place with the right
hash is not downloaded again, so re-running `ray up` is cheap.

The manifest lives in the repository, so the weights a cluster runs are pinned by a reviewed commit,
not by whatever the bucket holds today. Write it from a copy you trust (the one you uploaded):

    python deploy/fetch_weights.py record /models phi-4 whisper/large-v3.pt > deploy/weights.sha256
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20
_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")

Downloader = Callable[[str, Path], None]
"""Copies the object at `relative path under weights.source` to the given local file."""


class WeightsError(Exception):
    """A manifest, configuration or file problem that must stop the node's set-up."""


class ChecksumMismatch(WeightsError):
    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"{name}: sha256 {actual} but the manifest says {expected}; refusing it")
        self.name = name
        self.expected = expected
        self.actual = actual


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: str, name: str | None = None) -> None:
    """Raise ChecksumMismatch unless the file's sha256 is `expected`."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumMismatch(name or str(path), expected.lower(), actual)


def parse_manifest(text: str, source: str = "manifest") -> dict[str, str]:
    """`<sha256>  <relative path>` lines (sha256sum's format) -> {path: digest}; `#` comments allowed."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise WeightsError(f"{source}:{number}: expected '<64 hex digits>  <path>', got {raw!r}")
        path = PurePosixPath(match["path"])
        if path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
            raise WeightsError(f"{source}:{number}: {match['path']!r} must be a relative path inside the prefix")
        key = path.as_posix()
        if key in entries:
            raise WeightsError(f"{source}:{number}: {key} is listed twice")
        entries[key] = match["digest"].lower()
    return entries


def select(entries: dict[str, str], model_path: str) -> dict[str, str]:
    """The entries that make up one model: the file `model_path` itself, or everything under it."""
    prefix = model_path.rstrip("/")
    return {path: digest for path, digest in entries.items() if path == prefix or path.startswith(prefix + "/")}


def fetch(entries: dict[str, str], root: Path, download: Downloader) -> list[Path]:
    """Download each entry under `root` unless already there with its hash; verify before it lands."""
    placed: list[Path] = []
    for name, digest in sorted(entries.items()):
        destination = root / name
        if destination.is_file() and sha256_file(destination) == digest:
            placed.append(destination)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.part-{os.getpid()}")
        try:
            download(name, partial)
            verify(partial, digest, name)
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
        placed.append(destination)
    return placed


def s3_downloader(source: str) -> Downloader:
    """Objects under `s3://bucket/prefix/` with the node's instance profile (boto3's multipart download)."""
    import boto3

    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    client = boto3.client("s3")

    def download(name: str, destination: Path) -> None:
        client.download_file(bucket, f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name, str(destination))

    return download


def fetch_model(config_path: str, model: str, download: Downloader | None = None) -> list[Path]:
    """Fetch the files of `model` (llm | asr) that the config at `config_path` loads."""
    from iasovoice.config import load_config, resolve_path
    from iasovoice.errors import ConfigError

    try:
        config = load_config(config_path)
    except ConfigError as error:
        raise WeightsError(str(error)) from None
    weights = config.weights
    if weights.source is None:
        raise WeightsError(f"{config_path}: weights.source is null, so there is nothing to fetch from")
    models = config.fetched_models()
    if model not in models:
        raise WeightsError(
            f"{config_path}: the config loads no files for {model!r} under weights.root {weights.root} "
            f"(it fetches: {', '.join(sorted(models)) or 'nothing'})"
        )
    manifest_path = resolve_path(weights.manifest)
    if not manifest_path.is_file():
        raise WeightsError(f"weights.manifest {manifest_path} not found")
    wanted = select(parse_manifest(manifest_path.read_text(), str(manifest_path)), models[model])
    if not wanted:
        raise WeightsError(
            f"{manifest_path} lists no file under {models[model]}: record the checksums of the copy you "
            f"uploaded with `python deploy/fetch_weights.py record {weights.root} {models[model]}`"
        )
    return fetch(wanted, Path(weights.root), download or s3_downloader(weights.source))


def record(root: Path, paths: Iterable[str]) -> str:
    """The manifest lines (sorted) for the files at or under each of `paths`, relative to `root`."""
    lines: list[str] = []
    for relative in paths:
        base = root / relative
        if not base.exists():
            raise WeightsError(f"{base} does not exist")
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        lines += [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}" for p in files]
    return "".join(line + "\n" for line in sorted(lines, key=lambda line: line[66:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="download and verify one model's files (node set-up)")
    get.add_argument("--config", required=True, help="the deployed config, e.g. configs/production.yaml")
    get.add_argument("--model", required=True, choices=("llm", "asr"))
    rec = sub.add_parser("record", help="print manifest lines for files under ROOT (from a trusted copy)")
    rec.add_argument("root", type=Path)
    rec.add_argument("paths", nargs="+", help="files or directories relative to ROOT, e.g. phi-4")
    args = parser.parse_args(argv)
    try:
        if args.command == "record":
            sys.stdout.write(record(args.root, args.paths))
            return 0
        placed = fetch_model(args.config, args.model)
    except WeightsError as error:
        print(f"fetch_weights: {error}", file=sys.stderr)
        return 1
    print(f"fetch_weights: {args.model}: {len(placed)} files verified under {placed[0].parent if placed else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
