"""Production chat engine: Phi-4 (or any local chat model) on vLLM's ``AsyncLLMEngine``, GPU only.

vLLM is in the optional ``gpu`` extra and is imported lazily, so the CPU path never needs it. The
model must be a local directory from the operator's model store: a hub id would make vLLM download
weights, which no production host here can do (and a medical deployment should not do silently).
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from iasovoice.engines.llm.base import ChatMessage, CompletesFromStream
from iasovoice.errors import IasoVoiceError, ModelNotFoundError

logger = logging.getLogger(__name__)

CONFIG_KEY = "llm.vllm.model"


class VLLMEngineUnavailable(IasoVoiceError, ImportError):
    """vLLM is not installed (it ships only with the ``gpu`` extra)."""


class VLLMEngine(CompletesFromStream):
    """Streams chat replies from a vLLM ``AsyncLLMEngine`` and aborts requests the caller dropped."""

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        max_model_len: int = 8192,
        gpu_memory_utilization: float = 0.90,
        dtype: str = "auto",
        **engine_kwargs: Any,
    ) -> None:
        # Checked before importing vLLM so a hub id is refused on any host.
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ModelNotFoundError(
                CONFIG_KEY,
                f"vLLM model {model!r} is not a local directory; weights are never downloaded from a hub.",
            )
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
        except ImportError as exc:
            raise VLLMEngineUnavailable(
                f"VLLMEngine needs vLLM, which is not installed ({exc}). Install the GPU extra with "
                "pip install -e '.[gpu]' on a CUDA host, or use the llama.cpp engine on CPU."
            ) from exc
        self._sampling_params_cls = SamplingParams
        args = AsyncEngineArgs(
            model=str(path),
            tokenizer=str(path),
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            **engine_kwargs,
        )
        self._engine = AsyncLLMEngine.from_engine_args(args)
        self._tokenizer: Any = None
        self.name = path.name
        self.max_model_len = max_model_len

    async def _prompt(self, messages: list[ChatMessage]) -> str:
        if self._tokenizer is None:
            tokenizer = self._engine.get_tokenizer()
            # ``get_tokenizer`` is a coroutine in the AsyncLLMEngine API; tolerate a plain value too.
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    async def stream_chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
    ) -> AsyncIterator[str]:
        prompt = await self._prompt(messages)
        params = self._sampling_params_cls(max_tokens=max_tokens, temperature=temperature, stop=stop or None)
        request_id = f"iasovoice-{uuid.uuid4().hex}"
        emitted = 0
        finished = False
        try:
            async for output in self._engine.generate(prompt, params, request_id):
                # RequestOutput text is cumulative by default: emit only what is new.
                text = output.outputs[0].text
                if len(text) > emitted:
                    yield text[emitted:]
                    emitted = len(text)
                finished = output.finished
        finally:
            if not finished:
                # The consumer stopped early (barge-in or cancellation): free the GPU slot now.
                await self._engine.abort(request_id)

