"""deploy/fetch_weights.py: a GPU node gets exactly the reviewed weights, or its set-up stops.

The downloader is the only part replaced (S3 is not reachable here); the manifest, the selection from
the deployed config, the checksum check and what is left on disk are the script's own.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ROOT / "configs" / "production.yaml"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_weights", ROOT / "deploy" / "fetch_weights.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_verify_accepts_the_right_checksum_and_refuses_any_other(tmp_path: Path) -> None:
    weights = tmp_path / "model-00001-of-00006.safetensors"
    weights.write_bytes(b"\x00weights" * 300_000)  # several read chunks
    fw.verify(weights, _sha(weights.read_bytes()))
    fw.verify(weights, _sha(weights.read_bytes()).upper())  # sha256sum may be either case
    with pytest.raises(fw.ChecksumMismatch) as error:
        fw.verify(weights, _sha(b"something else"))
    assert error.value.actual == _sha(weights.read_bytes())
    assert "refusing" in str(error.value)


def test_manifest_format_is_checked_line_by_line() -> None:
    digest = _sha(b"x")
    text = f"# comment\n\n{digest}  phi-4/config.json\n{digest} *whisper/large-v3.pt\n"
    assert fw.parse_manifest(text) == {"phi-4/config.json": digest, "whisper/large-v3.pt": digest}
    for bad, message in [
        (f"{digest[:-1]}  a.bin", "expected"),
        (f"{digest}  /etc/passwd", "relative path"),
        (f"{digest}  phi-4/../../x", "relative path"),
        (f"{digest}  a.bin\n{digest}  a.bin", "listed twice"),
    ]:
        with pytest.raises(fw.WeightsError, match=message):
            fw.parse_manifest(bad, "deploy/weights.sha256")
    entries = fw.parse_manifest(text)
    assert fw.select(entries, "phi-4") == {"phi-4/config.json": digest}
    assert fw.select(entries, "phi") == {}  # a prefix of a name is not the model
    assert fw.select(entries, "whisper/large-v3.pt") == {"whisper/large-v3.pt": digest}


class _Bucket:
    """Stands in for the S3 prefix: name -> bytes; counts downloads."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.downloads: list[str] = []

    def __call__(self, name: str, destination: Path) -> None:
        self.downloads.append(name)
        destination.write_bytes(self.objects[name])


def test_fetch_places_verified_files_and_skips_those_already_there(tmp_path: Path) -> None:
    objects = {"phi-4/config.json": b"{}", "phi-4/model.safetensors": b"w" * 4096}
    bucket = _Bucket(objects)
    entries = {name: _sha(data) for name, data in objects.items()}
    placed = fw.fetch(entries, tmp_path, bucket)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in placed) == sorted(objects)
    assert (tmp_path / "phi-4" / "model.safetensors").read_bytes() == objects["phi-4/model.safetensors"]
    fw.fetch(entries, tmp_path, bucket)  # `ray up` again: nothing downloaded twice
    assert len(bucket.downloads) == 2
    assert sorted(p.name for p in (tmp_path / "phi-4").iterdir()) == ["config.json", "model.safetensors"]


def test_a_tampered_file_stops_the_fetch_and_leaves_nothing(tmp_path: Path) -> None:
    bucket = _Bucket({"phi-4/model.safetensors": b"tampered"})
    entries = {"phi-4/model.safetensors": _sha(b"the reviewed weights")}
    with pytest.raises(fw.ChecksumMismatch, match="phi-4/model.safetensors"):
        fw.fetch(entries, tmp_path, bucket)
    assert list((tmp_path / "phi-4").iterdir()) == []  # no file, no partial download
    # A stale or corrupt file in place is replaced only by a verified one, never kept.
    (tmp_path / "phi-4" / "model.safetensors").write_bytes(b"old")
    good = _Bucket({"phi-4/model.safetensors": b"the reviewed weights"})
    fw.fetch(entries, tmp_path, good)
    assert (tmp_path / "phi-4" / "model.safetensors").read_bytes() == b"the reviewed weights"


def _node(tmp_path: Path, manifest: str) -> tuple[Path, Path]:
    """A production config whose weights.root is a temp dir (the node's /models)."""
    models = tmp_path / "models"
    manifest_file = tmp_path / "weights.sha256"
    manifest_file.write_text(manifest)
    config = tmp_path / "production.yaml"
    config.write_text(
        f"base: {PRODUCTION}\n"
        f"weights: {{root: {models}, manifest: {manifest_file}}}\n"
        f"llm: {{vllm: {{model: {models}/phi-4}}}}\n"
        f"asr: {{model_path: {models}/whisper/large-v3.pt}}\n"
    )
    return config, models


def test_fetch_model_takes_the_files_the_deployed_config_loads(tmp_path: Path) -> None:
    objects = {"phi-4/config.json": b"{}", "whisper/large-v3.pt": b"pt"}
    manifest = "".join(f"{_sha(data)}  {name}\n" for name, data in objects.items())
    config, models = _node(tmp_path, manifest)
    bucket = _Bucket(objects)
    assert fw.fetch_model(str(config), "llm", bucket) == [models / "phi-4" / "config.json"]
    assert fw.fetch_model(str(config), "asr", bucket) == [models / "whisper" / "large-v3.pt"]
    assert bucket.downloads == ["phi-4/config.json", "whisper/large-v3.pt"]


def test_an_empty_manifest_refuses_with_the_command_that_fills_it(tmp_path: Path) -> None:
    shipped = (ROOT / "deploy" / "weights.sha256").read_text()
    assert fw.parse_manifest(shipped) == {}  # shipped empty: the operator records their own copy
    config, _ = _node(tmp_path, shipped)
    with pytest.raises(fw.WeightsError, match="lists no file under phi-4.*fetch_weights.py record"):
        fw.fetch_model(str(config), "llm", _Bucket({}))
    assert fw.main(["fetch", "--config", str(config), "--model", "llm"]) == 1


def test_record_writes_a_manifest_fetch_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "phi-4").mkdir()
    (tmp_path / "phi-4" / "b.safetensors").write_bytes(b"b")
    (tmp_path / "phi-4" / "a.json").write_bytes(b"a")
    assert fw.main(["record", str(tmp_path), "phi-4"]) == 0
    entries = fw.parse_manifest(capsys.readouterr().out)
    assert entries == {"phi-4/a.json": _sha(b"a"), "phi-4/b.safetensors": _sha(b"b")}
    with pytest.raises(fw.WeightsError, match="does not exist"):
        fw.record(tmp_path, ["whisper"])
