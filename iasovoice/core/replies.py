"""A spoken reply as a handle: it has an id, streams text into sentence segments, and can be cancelled.

Segments are synthesized in parallel and may come back in any order; the handle hands them to the
playout strictly in order and remembers which were actually queued, so the transcript records what the
caller could have heard, not what the model wrote after the caller cut it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from iasovoice.core.sentences import SentenceSplitter

ReplyKind = Literal["greeting", "llm", "scripted", "safety"]


@dataclass
class ReplyHandle:
    reply_id: str
    kind: ReplyKind
    interruptible: bool = True
    splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    segment_texts: list[str] = field(default_factory=list)
    ready: dict[int, np.ndarray | None] = field(default_factory=dict)
    next_to_queue: int = 0
    text_done: bool = False
    cancelled: bool = False
    recorded: bool = False
    failed_segments: int = 0  # segments whose speech failed: the caller did not hear them

    def add_segment(self, text: str) -> int:
        self.segment_texts.append(text)
        return len(self.segment_texts) - 1

    def segment_ready(self, segment: int, samples: np.ndarray | None) -> list[np.ndarray]:
        """Store a synthesized segment (None = failed) and return those now playable in order."""
        self.ready[segment] = samples
        if samples is None:
            self.failed_segments += 1
        playable: list[np.ndarray] = []
        while self.next_to_queue in self.ready:
            audio = self.ready.pop(self.next_to_queue)
            if audio is not None and len(audio):
                playable.append(audio)
            self.next_to_queue += 1
        return playable

    @property
    def fully_queued(self) -> bool:
        return self.text_done and self.next_to_queue >= len(self.segment_texts)

    @property
    def active(self) -> bool:
        """Still producing audio (text or speech outstanding)."""
        return not self.cancelled and not self.fully_queued

    def heard_text(self) -> str:
        """The text of the segments that reached the playout (what the caller could hear)."""
        return " ".join(self.segment_texts[: self.next_to_queue]).strip()
