"""llama.cpp engine and packaged-weights assembly, with the real packaged Qwen2.5 1.5B model.

The model is joined once into ``$IASOVOICE_MODEL_CACHE`` (default ``~/.cache/iasovoice/models``) and
reused by later runs. Outputs are kept short (n_threads=1, small max_tokens) because the CI machine
has two shared cores.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from iasovoice.engines.llm import (
    LlamaCppEngine,
    LLMEngine,
    PackagedModelSpec,
    PackagedWeightsError,
    assemble_packaged_model,
    default_cache_dir,
    packaged_weights,
)
from iasovoice.errors import ModelNotFoundError

MESSAGES = [
    {
        "role": "system",
        "content": "You are a polite receptionist at a medical practice. Answer in one sentence.",
    },
    {"role": "user", "content": "Hello, I would like to book an appointment for a check-up."},
]


@pytest.fixture(scope="module")
def engine() -> LlamaCppEngine:
    started = time.perf_counter()
    path = assemble_packaged_model(default_cache_dir())
    print(f"\nassemble/verify: {time.perf_counter() - started:.2f} s")
    eng = LlamaCppEngine(path, n_ctx=4096, n_threads=1)
    print(f"load: {eng.load_s:.2f} s")
    return eng


async def _wait_idle(eng: LlamaCppEngine, limit_s: float) -> float:
    started = time.perf_counter()
    while eng.busy and time.perf_counter() - started < limit_s:
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


# --- no model needed -------------------------------------------------------------------------


def test_missing_model_file_names_config_key(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        LlamaCppEngine(tmp_path / "nope.gguf")
    assert info.value.config_key == "llm.model_path"
    assert "nope.gguf" in str(info.value)


def test_missing_part_packages(tmp_path: Path) -> None:
    spec = PackagedModelSpec(
        "ghost", "ghost.gguf", "ghost-part", "iasovoice_ghost_part", "1.0", 3, 10, "0" * 64
    )
    with pytest.raises(ModelNotFoundError) as info:
        assemble_packaged_model(tmp_path, spec=spec, progress=False)
    assert info.value.config_key == "llm.model_path"
    assert "ghost-part1==1.0" in str(info.value) and "requirements/models.txt" in str(info.value)
    assert not (tmp_path / "ghost.gguf").exists()


def test_unknown_packaged_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="qwen2.5-coder-1.5b-instruct"):
        assemble_packaged_model(tmp_path, name="llama-9000")


def _fake_parts(root: Path, prefix: str, chunks: list[bytes]) -> None:
    """Lay out packages the way the real wheels do: <prefix>N/__init__.py and <prefix>N/data/partNN.bin."""
    for index, chunk in enumerate(chunks, start=1):
        package = root / f"{prefix}{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{index:02d}.bin").write_bytes(chunk)


def _spec(prefix: str, chunks: list[bytes], content: bytes) -> PackagedModelSpec:
    return PackagedModelSpec(
        name=prefix,
        filename=f"{prefix}.gguf",
        distribution_prefix=prefix.replace("_", "-"),
        module_prefix=prefix,
        version="0.0.1",
        parts=len(chunks),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def test_fake_parts_join_in_order_and_verify_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [bytes([i]) * (1000 + i) for i in range(1, 12)]  # 11 parts: part10 must follow part9
    content = b"".join(chunks)
    _fake_parts(tmp_path / "site", "ivfake_ok_part", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = _spec("ivfake_ok_part", chunks, content)
    cache = tmp_path / "cache"
    path = assemble_packaged_model(cache, spec=spec, progress=False)
    assert path.read_bytes() == content
    # A restart trusts the stamp: no re-hash.
    monkeypatch.setattr(packaged_weights, "sha256_file", lambda *a: pytest.fail("re-hashed"))
    assert assemble_packaged_model(cache, spec=spec, progress=False) == path
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    # A cached file changed behind our back is re-hashed, rejected and rebuilt.
    path.write_bytes(b"\0" * len(content))
    assert assemble_packaged_model(cache, spec=spec, progress=False).read_bytes() == content


def test_short_part_set_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"a" * 100, b"b" * 100, b"c" * 100]
    spec = _spec("ivfake_short_part", chunks, b"".join(chunks))
    _fake_parts(tmp_path / "site", "ivfake_short_part", [chunks[0], chunks[1], chunks[2][:50]])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(PackagedWeightsError, match="add up to 250 bytes, expected 300") as info:
        assemble_packaged_model(tmp_path / "cache", spec=spec, progress=False)
    assert info.value.config_key == "llm.model_path"
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_corrupted_part_fails_checksum_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"a" * 100, b"b" * 100, b"c" * 100]
    spec = _spec("ivfake_bad_part", chunks, b"".join(chunks))
    _fake_parts(tmp_path / "site", "ivfake_bad_part", [chunks[0], b"b" * 99 + b"X", chunks[2]])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(PackagedWeightsError, match="sha256") as info:
        assemble_packaged_model(tmp_path / "cache", spec=spec, progress=False)
    assert "partial file was removed" in str(info.value)
    leftovers = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


# --- real model ------------------------------------------------------------------------------


def test_engine_meets_protocol(engine: LlamaCppEngine) -> None:
    assert isinstance(engine, LLMEngine)
    assert engine.name


async def test_stream_yields_deltas_that_join_into_the_reply(engine: LlamaCppEngine) -> None:
    started = time.perf_counter()
    first_at = None
    deltas: list[str] = []
    async for delta in engine.stream_chat(MESSAGES, max_tokens=40, temperature=0.0):
        first_at = first_at or time.perf_counter() - started
        deltas.append(delta)
    elapsed = time.perf_counter() - started
    streamed = "".join(deltas)
    print(
        f"\nfirst delta {first_at:.2f} s, {len(deltas)} deltas, "
        f"{engine.last_completion_tokens / (elapsed - first_at):.1f} tok/s: {streamed!r}"
    )
    assert len(deltas) >= 4
    assert streamed.strip()
    assert any(word in streamed.lower() for word in ("appointment", "check", "book", "schedule"))
    whole = await engine.complete(MESSAGES, max_tokens=40, temperature=0.0)
    assert whole == streamed  # greedy decoding: same reply either way


async def test_closing_the_stream_stops_generation(engine: LlamaCppEngine) -> None:
    deltas = []
    async with aclosing(engine.stream_chat(MESSAGES, max_tokens=400, temperature=0.7)) as stream:
        async for delta in stream:
            deltas.append(delta)
            if len(deltas) == 3:
                break
    # The token count is the proof that generation stopped at once; how long the worker thread
    # takes to notice depends on the machine's load (two test workers share two cores).
    await _wait_idle(engine, 2.0)
    assert not engine.busy, "generation kept running after the consumer left"
    assert engine.last_completion_tokens < 10


async def test_cancelling_the_task_stops_generation(engine: LlamaCppEngine) -> None:
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.stream_chat(MESSAGES, max_tokens=400, temperature=0.7):
            got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_idle(engine, 2.0)
    assert not engine.busy, "generation kept running after the task was cancelled"
    assert engine.last_completion_tokens < 15


async def test_cancelling_during_prompt_evaluation(engine: LlamaCppEngine) -> None:
    """A barge-in during a long prompt must not wait for the whole prompt to be evaluated."""
    long_messages = [
        {"role": "system", "content": "You summarise phone calls."},
        {"role": "user", "content": "The caller said: " + "I have had a mild cough for a few days. " * 150},
    ]
    task = asyncio.create_task(engine.complete(long_messages, max_tokens=20, temperature=0.0))
    await asyncio.sleep(0.5)
    assert engine.busy and engine.last_completion_tokens == 0  # still evaluating the prompt
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The whole prompt takes ~10 s on two busy cores; stopping at the next batch is well under 2 s.
    assert await _wait_idle(engine, 8.0) < 2.0
    # The context is still usable (aborted KV entries are dropped by the next evaluation).
    reply = await engine.complete(MESSAGES, max_tokens=20, temperature=0.0)
    assert reply.strip()


def test_cache_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IASOVOICE_MODEL_CACHE", str(tmp_path / "models"))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("IASOVOICE_MODEL_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "iasovoice" / "models"
