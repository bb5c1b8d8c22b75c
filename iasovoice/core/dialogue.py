"""The call's dialogue state: turns, slots and flags, and the plans the session turns into speech.

Who decides what is said lives elsewhere: the safety rules (`iasovoice.dialogue.safety_rules`) and
Rasa (`iasovoice.dialogue.turn`) decide intents, escalation and scripted responses; the LLM only
writes free text. This state is what both feed and what the note is written from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from iasovoice.notes.schema import TranscriptTurn

SafetyKind = Literal["emergency", "crisis"]


@dataclass(frozen=True)
class ScriptedReply:
    """Text spoken as it is (a Rasa response or a safety script), never through the LLM.

    A safety script (`safety` set) is never interrupted, truncated, overwritten or dropped.
    """

    text: str
    interruptible: bool = True
    safety: SafetyKind | None = None


@dataclass(frozen=True)
class LLMReply:
    messages: list[dict[str, str]]


ReplyPlan = ScriptedReply | LLMReply


@dataclass
class DialogueState:
    """The call's conversation: every turn in order, the slots Rasa filled, and what happened on the way."""

    system_prompt: str
    history_turns: int = 12
    llm_context: str = "{slots}"
    turns: list[TranscriptTurn] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    intents: dict[str, str] = field(default_factory=dict)  # caller utterance id -> Rasa intent
    dtmf: str = ""
    # Bumped by every change above, so the call actor checkpoints only when there is something new.
    revision: int = 0

    def add_turn(self, turn: TranscriptTurn) -> None:
        self.turns.append(turn)
        self.revision += 1

    def amend_turn(self, utterance_id: str, text: str) -> bool:
        """Replace a turn's text in place (a reply cut by a barge-in after it was recorded whole).

        False when there is no such turn (a reply cancelled before any of it was queued has none).
        """
        for index, turn in enumerate(self.turns):
            if turn.utterance_id == utterance_id:
                self.turns[index] = turn.model_copy(update={"text": text})
                self.revision += 1
                return True
        return False

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)
            self.revision += 1

    def update_slots(self, slots: dict[str, Any]) -> None:
        """Keep every slot Rasa has filled; a later value replaces an earlier one."""
        if any(self.slots.get(name, object()) != value for name, value in slots.items()):
            self.slots.update(slots)
            self.revision += 1

    def set_intent(self, utterance_id: str, intent: str) -> None:
        self.intents[utterance_id] = intent
        self.revision += 1

    def add_dtmf(self, digits: str) -> None:
        self.dtmf += digits
        self.revision += 1

    def chat_messages(self) -> list[dict[str, str]]:
        system = self.system_prompt
        if self.slots:
            facts = json.dumps(self.slots, sort_keys=True, ensure_ascii=False)
            system = f"{system}\n\n{self.llm_context.replace('{slots}', facts)}"
        messages = [{"role": "system", "content": system}]
        for turn in self.turns[-self.history_turns:]:
            role = "assistant" if turn.role == "agent" else "user"
            if messages[-1]["role"] == role:  # chat templates want alternating roles
                messages[-1] = {"role": role, "content": messages[-1]["content"] + " " + turn.text}
            else:
                messages.append({"role": role, "content": turn.text})
        return messages
