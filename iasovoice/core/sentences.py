"""Split streamed LLM text into speakable sentences so TTS can start before the reply is finished."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ABBREVIATIONS = ("dr.", "mr.", "mrs.", "ms.", "st.", "e.g.", "i.e.", "vs.", "no.", "a.m.", "p.m.")


class SentenceSplitter:
    """Accumulates text deltas and yields whole sentences.

    A sentence ends at `.`, `!` or `?` followed by white space, unless the word is a common abbreviation
    (a spoken "Dr." must not become its own TTS request). Very long clauses are also cut at a comma
    once they pass `max_chars`, so the first audio of a rambling reply is not held back.
    """

    def __init__(self, max_chars: int = 220) -> None:
        self._buffer = ""
        self._max_chars = max_chars

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            candidate = self._buffer[start:match.start()].strip()
            last_word = candidate.rsplit(" ", 1)[-1].lower() if candidate else ""
            if last_word in _ABBREVIATIONS:
                continue
            if candidate:
                sentences.append(candidate)
            start = match.end()
        self._buffer = self._buffer[start:]
        if len(self._buffer) > self._max_chars and "," in self._buffer:
            head, _, tail = self._buffer.rpartition(",")
            if head.strip():
                sentences.append(head.strip() + ",")
                self._buffer = tail
        return sentences

    def flush(self) -> list[str]:
        rest = self._buffer.strip()
        self._buffer = ""
        return [rest] if rest else []
