"""The contract every LLM backend meets, so call actors and note generation never import a backend.

Replies stream (an async generator of text deltas) because the caller starts TTS on the first
sentence; a caller who barges in simply stops iterating, and a backend must then stop generating
promptly instead of burning the CPU/GPU on text nobody will hear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

ChatMessage = dict[str, str]
"""One chat turn: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""


@runtime_checkable
class LLMEngine(Protocol):
    """A chat model that can stream a reply and be interrupted between tokens."""

    name: str

    def stream_chat(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
    ) -> AsyncIterator[str]:
        """Yield text deltas of the assistant's reply as soon as they are decoded.

        Closing the generator (``aclose``, or cancelling the task that iterates it) stops generation
        promptly; wrap the loop in ``contextlib.aclosing`` when breaking out of it early, so the
        generator is closed at once rather than when it is garbage-collected.
        """
        ...

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
    ) -> str:
        """Return the whole reply (used for notes, where nothing is spoken)."""
        ...


async def collect(stream: AsyncIterator[str]) -> str:
    """Join a delta stream into one string; shared by engines to implement ``complete``.

    The stream is closed explicitly so a cancelled ``complete`` stops generation at once instead of
    whenever the garbage collector finalises the generator.
    """
    parts: list[str] = []
    try:
        async for delta in stream:
            parts.append(delta)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return "".join(parts)


class CompletesFromStream:
    """Mixin: `complete` for any engine that implements `stream_chat` (one definition for all)."""

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
    ) -> str:
        stream = self.stream_chat(  # type: ignore[attr-defined]
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )
        return await collect(stream)
