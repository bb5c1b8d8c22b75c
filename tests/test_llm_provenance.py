"""Which weights wrote a note: real names, checksums of real files, and the cache that spares re-hashing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from iasovoice.config import LLMConfig, load_config
from iasovoice.engines.llm import packaged_weights
from iasovoice.engines.llm.packaged_weights import PACKAGED_MODELS
from iasovoice.engines.llm.provenance import packaged_provenance, weights_provenance
from iasovoice.factory import llm_provenance
from tests.paths import REPO

APP = load_config(REPO / "configs" / "app.yaml")


def _config(**fields: object) -> LLMConfig:
    return APP.llm.model_copy(update=fields)


def test_the_packaged_weights_are_named_as_the_coder_builds_they_are() -> None:
    for name, spec in PACKAGED_MODELS.items():
        assert "coder" in name and spec.title.startswith("Qwen2.5-Coder-")
    default = llm_provenance(APP.llm)
    assert default.name == "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF)"
    assert default.sha256 == PACKAGED_MODELS[APP.llm.packaged_model].sha256


def test_a_config_with_the_old_name_gets_the_same_weights() -> None:
    data = APP.llm.model_dump()
    data["packaged_model"] = "qwen2.5-1.5b-instruct"
    assert LLMConfig.model_validate(data).packaged_model == "qwen2.5-coder-1.5b-instruct"
    assert packaged_provenance("qwen2.5-coder-0.5b-instruct").name.startswith("Qwen2.5-Coder-0.5B")


def test_a_gguf_file_is_hashed_once_and_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "phi-4-q4.gguf"
    weights.write_bytes(os.urandom(3_000_000))
    cache = tmp_path / "cache"
    first = llm_provenance(_config(model_path=str(weights), model_cache_dir=str(cache)))
    assert first.name == "phi-4-q4.gguf"
    assert first.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()

    real_hash = packaged_weights.sha256_file
    monkeypatch.setattr("iasovoice.engines.llm.provenance.sha256_file", lambda *a, **k: pytest.fail("re-hashed"))
    assert weights_provenance(weights, cache) == first  # the stamp vouches for the unchanged file

    weights.write_bytes(b"other weights")
    monkeypatch.setattr("iasovoice.engines.llm.provenance.sha256_file", real_hash)
    assert weights_provenance(weights, cache).sha256 == hashlib.sha256(b"other weights").hexdigest()


def test_a_model_directory_is_digested_by_its_manifest(tmp_path: Path) -> None:
    model = tmp_path / "phi-4"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"architectures": ["Phi3ForCausalLM"]}')
    (model / "sub" / "model-00001.safetensors").write_bytes(b"\x00" * 1000)
    cache = tmp_path / "cache"
    vllm = APP.llm.vllm.model_copy(update={"model": str(model)})
    before = llm_provenance(_config(engine="vllm", num_gpus=1, vllm=vllm, model_cache_dir=str(cache)))
    assert before.name == "phi-4" and before.sha256 and len(before.sha256) == 64
    (model / "sub" / "model-00001.safetensors").write_bytes(b"\x01" * 1000)  # same size, other bytes
    os.utime(model / "sub" / "model-00001.safetensors", ns=(1, 1))
    assert weights_provenance(model, cache).sha256 != before.sha256


def test_a_hub_id_is_named_without_a_made_up_checksum(tmp_path: Path) -> None:
    assert weights_provenance(Path("microsoft/phi-4"), tmp_path).sha256 is None
    assert llm_provenance(_config(engine="standin")).sha256 is None
