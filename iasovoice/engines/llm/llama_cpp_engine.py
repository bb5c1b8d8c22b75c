"""CPU chat engine on llama.cpp (llama-cpp-python), the default when no GPU is present.

llama-cpp-python is synchronous and a llama.cpp context is not thread-safe, so each request runs in
its own worker thread under one lock and hands deltas to the event loop through an asyncio queue.
The worker checks a stop flag between tokens: when the consumer stops iterating (the caller barged
in, or the task was cancelled) generation ends after at most one more token instead of running to
``max_tokens`` while holding the model. Prompt evaluation (seconds for a long transcript) is one
uninterruptible Python call, so while it runs llama.cpp's abort callback polls the same flag; the
callback is removed once the first token arrives because calling into Python for every graph node
costs ~10% of decode speed.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from iasovoice.engines.llm.base import ChatMessage, CompletesFromStream
from iasovoice.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

CONFIG_KEY = "llm.model_path"

_DELTA, _ERROR, _DONE = "delta", "error", "done"


class LlamaCppEngine(CompletesFromStream):
    """A GGUF chat model loaded once and shared by every request of this process.

    ``n_threads`` defaults to 1: with ASR sharing two cores, two llama.cpp threads collapsed to
    ~1 tok/s under load while one thread held its speed (MODELS.md).
    """

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 4096,
        n_threads: int = 1,
        n_batch: int = 256,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(CONFIG_KEY, f"No GGUF model file at {path}.")
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - a base dependency
            raise ModelNotFoundError(
                CONFIG_KEY, f"llama-cpp-python is not installed ({exc}); run pip install -e ."
            ) from exc
        started = time.perf_counter()
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=n_batch,
                seed=seed,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python raises ValueError for unreadable files
            raise ModelNotFoundError(
                CONFIG_KEY, f"{path} could not be loaded as a GGUF model ({exc})."
            ) from exc
        self.load_s = time.perf_counter() - started
        self.model_path = path
        self.name = name or path.stem
        self.n_ctx = n_ctx
        self.seed = seed
        self._lock = threading.Lock()
        self.last_completion_tokens = 0
        self._active_stop: threading.Event | None = None
        self._abort_callback, self._set_abort = self._make_abort_hook()
        logger.info("Loaded %s in %.2f s (n_ctx=%d, n_threads=%d)", self.name, self.load_s, n_ctx, n_threads)

    def _make_abort_hook(self) -> tuple[Any, Any]:
        """llama.cpp's abort callback bound to the running request's stop flag (None if unavailable)."""
        try:
            import llama_cpp

            ctx = self._llm._ctx.ctx  # private in llama-cpp-python 0.3.x (pinned); fall back if it moves

            def should_abort(_data: ctypes.c_void_p) -> bool:
                flag = self._active_stop
                return flag is not None and flag.is_set()

            callback = llama_cpp.ggml_abort_callback(should_abort)
            null_callback = ctypes.cast(None, llama_cpp.ggml_abort_callback)

            def set_abort(enabled: bool) -> None:
                llama_cpp.llama_set_abort_callback(ctx, callback if enabled else null_callback, None)

            return callback, set_abort
        except (AttributeError, ImportError):  # pragma: no cover - only if the pinned API changes
            logger.warning("llama.cpp abort callback unavailable: a barge-in waits for prompt evaluation")
            return None, lambda _enabled: None

    @property
    def busy(self) -> bool:
        """True while a worker thread holds the model (tests use it to check that cancellation frees it)."""
        return self._lock.locked()

    async def stream_chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop_flag = threading.Event()

        def post(kind: str, payload: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                pass

        def worker() -> None:
            try:
                with self._lock:
                    if stop_flag.is_set():
                        return
                    self._generate(messages, max_tokens, temperature, stop, stop_flag, post)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                post(_ERROR, exc)
            finally:
                post(_DONE, None)

        thread = threading.Thread(target=worker, name=f"llama-cpp-{self.name}", daemon=True)
        thread.start()
        try:
            while True:
                kind, payload = await queue.get()
                if kind == _DELTA:
                    yield payload
                elif kind == _ERROR:
                    raise payload
                else:
                    return
        finally:
            # Runs on normal end, on aclose()/break and on cancellation: the worker stops at its next token.
            stop_flag.set()

    def _generate(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        stop: list[str] | None,
        stop_flag: threading.Event,
        post: Any,
    ) -> None:
        self.last_completion_tokens = 0
        self._active_stop = stop_flag
        self._set_abort(True)
        chunks = self._llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop or [],
            seed=self.seed,
            stream=True,
        )
        try:
            for chunk in chunks:
                if self.last_completion_tokens == 0:
                    self._set_abort(False)  # prompt evaluated: check between tokens from here on
                self.last_completion_tokens += 1
                if stop_flag.is_set():
                    break
                delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                if delta:
                    post(_DELTA, delta)
        except RuntimeError:
            if not stop_flag.is_set():
                raise
            # llama_decode returned 2: aborted on request; the next eval drops the partial KV entries.
        finally:
            self._set_abort(False)
            self._active_stop = None
            chunks.close()  # type: ignore[union-attr]

