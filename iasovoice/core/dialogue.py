"""Dialogue state and policy until Rasa owns intents: red-flag rules first, the LLM for everything else.

Emergencies are decided by rules, never by a sampled token: a small model once told a chest-pain caller
to "bring a bandage". The rules are deliberately broad (a false alarm costs a sentence; a miss can cost a
life) and run on every caller utterance before the LLM sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from iasovoice.notes.schema import TranscriptTurn

EMERGENCY_REPLY = (
    "What you describe could be a medical emergency. Please hang up and call 911 now, or have someone "
    "take you to the nearest emergency room. I am flagging this call for our clinical team."
)
CRISIS_REPLY = (
    "I'm really sorry you're feeling this way, and you deserve support right now. Please call or text 988, "
    "the Suicide and Crisis Lifeline, or call 911 if you are in danger. I am flagging this call for our team."
)

_RED_FLAGS: dict[str, tuple[str, ...]] = {
    "crisis": (
        r"\bsuicid\w*", r"\bkill(ing)? myself\b", r"\bend (my|it) (life|all)\b", r"\bwant to die\b",
        r"\bhurt(ing)? myself\b",
    ),
    "emergency": (
        r"\bchest (pain|pressure|tightness)\b", r"\bpain in (my|the) chest\b", r"\bheart attack\b",
        r"\b(can'?t|cannot|can not|trouble|difficulty|hard to) breath\w*\b", r"\bshort(ness)? of breath\b",
        r"\bnot breathing\b", r"\bstroke\b", r"\bface (is )?droop\w*\b", r"\bslurred speech\b",
        r"\b(passed|passing) out\b", r"\bunconscious\b", r"\bunresponsive\b", r"\bseizure\w*\b",
        r"\boverdos\w*\b", r"\b(severe|heavy|uncontrolled) bleeding\b", r"\bbleeding (a lot|heavily)\b",
        r"\bthroat (is )?(closing|swelling)\b", r"\banaphyla\w*\b", r"\bworst headache\b",
        r"\bcoughing (up )?blood\b", r"\bvomiting blood\b",
    ),
}
_COMPILED = {kind: [re.compile(p, re.IGNORECASE) for p in patterns] for kind, patterns in _RED_FLAGS.items()}


def detect_red_flag(text: str) -> Literal["crisis", "emergency"] | None:
    """The first red-flag category whose pattern appears in `text` (crisis outranks emergency)."""
    for kind in ("crisis", "emergency"):
        if any(p.search(text) for p in _COMPILED[kind]):
            return kind  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class ScriptedReply:
    text: str
    flag: str


@dataclass(frozen=True)
class LLMReply:
    messages: list[dict[str, str]]


ReplyPlan = ScriptedReply | LLMReply


@dataclass
class DialogueState:
    """The call's conversation: every turn in order, plus what the policy concluded along the way."""

    system_prompt: str
    history_turns: int = 12
    turns: list[TranscriptTurn] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    dtmf: str = ""

    def add_turn(self, turn: TranscriptTurn) -> None:
        self.turns.append(turn)

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)

    def plan_reply(self, caller_text: str) -> ReplyPlan:
        """Decide how to answer the caller's latest utterance (already added as a turn)."""
        red_flag = detect_red_flag(caller_text)
        if red_flag == "crisis":
            self.flag("crisis_line_given")
            return ScriptedReply(CRISIS_REPLY, "crisis_line_given")
        if red_flag == "emergency":
            self.flag("emergency_escalated")
            return ScriptedReply(EMERGENCY_REPLY, "emergency_escalated")
        return LLMReply(self.chat_messages())

    def chat_messages(self) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}]
        for turn in self.turns[-self.history_turns:]:
            role = "assistant" if turn.role == "agent" else "user"
            if messages[-1]["role"] == role:  # chat templates want alternating roles
                messages[-1] = {"role": role, "content": messages[-1]["content"] + " " + turn.text}
            else:
                messages.append({"role": role, "content": turn.text})
        return messages
