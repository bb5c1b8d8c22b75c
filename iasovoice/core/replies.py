"""A spoken reply as a handle: it has an id, streams text into sentence segments, and can be cancelled.

Segments are synthesized in parallel and may come back in any order; the handle hands them to the
playout strictly in order and remembers which were queued and how many frames each took, so the
transcript records what the caller heard: not what the model wrote after the caller cut it off, not a
segment whose speech failed, and not the rest of a sentence a barge-in stopped.
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
    queued: list[tuple[int, int]] = field(default_factory=list)  # (segment, frames) in playout order

    def add_segment(self, text: str) -> int:
        self.segment_texts.append(text)
        return len(self.segment_texts) - 1

    def segment_ready(self, segment: int, samples: np.ndarray | None) -> list[tuple[int, np.ndarray]]:
        """Store a synthesized segment (None = failed) and return those now playable, in order, by index."""
        self.ready[segment] = samples
        if samples is None:
            self.failed_segments += 1
        playable: list[tuple[int, np.ndarray]] = []
        while self.next_to_queue in self.ready:
            audio = self.ready.pop(self.next_to_queue)
            if audio is not None and len(audio):
                playable.append((self.next_to_queue, audio))
            self.next_to_queue += 1
        return playable

    def queued_segment(self, segment: int, frames: int) -> None:
        self.queued.append((segment, frames))

    @property
    def fully_queued(self) -> bool:
        return self.text_done and self.next_to_queue >= len(self.segment_texts)

    @property
    def active(self) -> bool:
        """Still producing audio (text or speech outstanding)."""
        return not self.cancelled and not self.fully_queued

    def heard_text(self, frames_heard: int | None = None) -> tuple[str, bool]:
        """What the caller heard of this reply, and whether some of it went unheard.

        ``frames_heard`` None: everything queued plays out. Otherwise the segments that fit in the
        frames heard, and of a sentence cut part-way the share of its words that the share of its
        frames covers: TTS engines here give no word timings, so the cut is an estimate to the word.
        """
        remaining = sum(frames for _, frames in self.queued) if frames_heard is None else frames_heard
        heard: list[str] = []
        cut = False
        for segment, frames in self.queued:
            text = self.segment_texts[segment]
            if remaining >= frames:
                heard.append(text)
                remaining -= frames
                continue
            cut = True
            words = text.split()
            heard.append(" ".join(words[: len(words) * max(remaining, 0) // frames]))
            break
        return " ".join(part for part in heard if part).strip(), cut
