"""vLLM engine (GPU production path).

vLLM is only in the ``gpu`` extra, so on CPU hosts the real-engine test is skipped with the reason.
What runs everywhere: the clear errors (not installed; model not a local directory), and our
streaming/abort glue driven by a small stand-in with vLLM's ``AsyncLLMEngine`` interface (it checks
the delta slicing, chat templating and abort-on-cancel logic of *our* code, not vLLM itself).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import types
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from iasovoice.engines.llm.vllm_engine import VLLMEngine, VLLMEngineUnavailable
from iasovoice.errors import ModelNotFoundError

VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None
MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.mark.skipif(
    VLLM_INSTALLED, reason="vLLM is installed here; this checks the error on hosts without it"
)
def test_without_vllm_the_error_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(VLLMEngineUnavailable) as info:
        VLLMEngine(str(tmp_path))
    assert "pip install -e '.[gpu]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_hub_ids_are_refused() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        VLLMEngine("microsoft/phi-4")
    assert info.value.config_key == "llm.vllm.model"
    assert "not a local directory" in str(info.value)


# --- our glue, against a stand-in with vLLM's interface ---------------------------------------


@dataclass
class _Completion:
    text: str


@dataclass
class _RequestOutput:
    outputs: list[_Completion]
    finished: bool


@dataclass
class _StandInEngine:
    words: list[str]
    aborted: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    finished_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_engine_args(cls, args: Any) -> _StandInEngine:
        return cls(words=["Hello", " there", ",", " how", " can", " I", " help", "?"])

    async def get_tokenizer(self) -> Any:
        class Tokenizer:
            def apply_chat_template(self, messages, tokenize, add_generation_prompt):
                assert tokenize is False and add_generation_prompt is True
                return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

        return Tokenizer()

    async def generate(self, prompt: str, params: Any, request_id: str):
        self.prompts.append(prompt)
        text = ""
        for index, word in enumerate(self.words[: params.max_tokens]):
            await asyncio.sleep(0)
            text += word  # cumulative, like vLLM's default output kind
            yield _RequestOutput([_Completion(text)], finished=index == len(self.words) - 1)
        self.finished_ids.append(request_id)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> VLLMEngine:
    module = types.ModuleType("vllm")
    module.AsyncEngineArgs = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    module.AsyncLLMEngine = _StandInEngine  # type: ignore[attr-defined]

    @dataclass
    class SamplingParams:
        max_tokens: int
        temperature: float
        stop: list[str] | None = None

    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return VLLMEngine(str(tmp_path))


async def test_glue_streams_deltas_not_cumulative_text(stand_in: VLLMEngine) -> None:
    deltas = [d async for d in stand_in.stream_chat(MESSAGES, max_tokens=100, temperature=0.0)]
    assert deltas == ["Hello", " there", ",", " how", " can", " I", " help", "?"]
    assert (
        await stand_in.complete(MESSAGES, max_tokens=100, temperature=0.0) == "Hello there, how can I help?"
    )
    engine: _StandInEngine = stand_in._engine  # type: ignore[assignment]
    assert engine.prompts[0] == "<user>Hello<assistant>"
    assert engine.aborted == []  # finished requests are not aborted


async def test_glue_aborts_request_when_consumer_leaves(stand_in: VLLMEngine) -> None:
    async with aclosing(stand_in.stream_chat(MESSAGES, max_tokens=100, temperature=0.0)) as stream:
        async for _ in stream:
            break
    engine: _StandInEngine = stand_in._engine  # type: ignore[assignment]
    assert len(engine.aborted) == 1 and engine.aborted[0].startswith("iasovoice-")


# --- the real engine --------------------------------------------------------------------------

REAL_MODEL = os.environ.get("IASOVOICE_VLLM_MODEL")
_REAL_SKIP = (
    "vLLM is not installed (pip install -e '.[gpu]' on a CUDA host)"
    if not VLLM_INSTALLED
    else "set IASOVOICE_VLLM_MODEL to a local model directory (no hub download)"
)


@pytest.mark.skipif(not (VLLM_INSTALLED and REAL_MODEL), reason=_REAL_SKIP)
async def test_real_vllm_streams_and_aborts() -> None:
    engine = VLLMEngine(REAL_MODEL or "", max_model_len=2048, gpu_memory_utilization=0.5)
    deltas = [d async for d in engine.stream_chat(MESSAGES, max_tokens=24, temperature=0.0)]
    assert len(deltas) >= 2 and "".join(deltas).strip()
    async with aclosing(engine.stream_chat(MESSAGES, max_tokens=512, temperature=0.7)) as stream:
        async for _ in stream:
            break
    assert (await engine.complete(MESSAGES, max_tokens=8, temperature=0.0)).strip()
