"""One typed vocabulary for what happens on a call (events) and what the call asks for (actions).

The call actor turns socket traffic and engine results into events, feeds them to `CallSession`, and
carries out the actions it gets back. Keeping both sides as plain dataclasses is what lets a test script
a whole call on a fake clock and assert the exact sequence of actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from iasovoice.dialogue.turn import DialogueTurn

# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class CallStarted:
    now: float


@dataclass(frozen=True)
class AudioReceived:
    """One 20 ms caller frame; `seq` is assigned by the gateway in arrival order."""

    seq: int
    samples: np.ndarray
    now: float


@dataclass(frozen=True)
class Tick:
    """Time passes: release due frames from the jitter buffer and agent audio to the playout."""

    now: float


@dataclass(frozen=True)
class TranscriptReady:
    utterance_id: str
    text: str
    now: float


@dataclass(frozen=True)
class TranscriptionFailed:
    utterance_id: str
    reason: str
    now: float


@dataclass(frozen=True)
class ReplyTextDelta:
    reply_id: str
    text: str
    now: float


@dataclass(frozen=True)
class ReplyTextDone:
    reply_id: str
    now: float


@dataclass(frozen=True)
class ReplyFailed:
    reply_id: str
    reason: str
    now: float


@dataclass(frozen=True)
class SpeechReady:
    """Synthesized audio for one segment (sentence) of a reply, at the call's sample rate."""

    reply_id: str
    segment: int
    samples: np.ndarray
    now: float


@dataclass(frozen=True)
class SpeechFailed:
    reply_id: str
    segment: int
    reason: str
    now: float


@dataclass(frozen=True)
class DtmfReceived:
    digits: str
    now: float


@dataclass(frozen=True)
class DialogueResolved:
    """Rasa's answer to one caller utterance (intent, slots, what to say or whom to hand the turn to)."""

    utterance_id: str
    turn: DialogueTurn
    now: float


@dataclass(frozen=True)
class DialogueUnavailable:
    """Rasa could not answer in time (down, slow, erroring): the turn goes on with the rules and the LLM."""

    utterance_id: str
    reason: str
    now: float


@dataclass(frozen=True)
class HangupRequested:
    reason: str
    now: float


@dataclass(frozen=True)
class NoteStored:
    now: float
    ok: bool = True


Event = (
    CallStarted | AudioReceived | Tick | TranscriptReady | TranscriptionFailed | ReplyTextDelta | ReplyTextDone
    | ReplyFailed | SpeechReady | SpeechFailed | DtmfReceived | DialogueResolved | DialogueUnavailable
    | HangupRequested | NoteStored
)

# --------------------------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Transcribe:
    """Send one caller utterance (int16 at `sample_rate`) to speech-to-text."""

    utterance_id: str
    samples: np.ndarray
    sample_rate: int
    partial: bool = False


@dataclass(frozen=True)
class GenerateReply:
    """Stream the agent's next reply from the LLM for this chat history."""

    reply_id: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class InterpretUtterance:
    """Send one final caller utterance to the dialogue engine (Rasa), the call id as its sender id.

    `trigger` names an external intent instead (an outbound call's opening), with no caller text.
    """

    utterance_id: str
    text: str
    trigger: str | None = None


@dataclass(frozen=True)
class SendTransfer:
    """Tell the telephony side to hand the call on: `kind` emergency | crisis | staff.

    It goes out as a `transfer` websocket message and, in production, as the contact attribute the
    Amazon Connect flow branches on.
    """

    kind: Literal["emergency", "crisis", "staff"]
    target: str
    source: str


@dataclass(frozen=True)
class Synthesize:
    reply_id: str
    segment: int
    text: str
    voice: str


@dataclass(frozen=True)
class CancelReply:
    """Stop generating and synthesizing a reply (the caller barged in or hung up)."""

    reply_id: str


@dataclass(frozen=True)
class SendAudio:
    frames: list[np.ndarray]


@dataclass(frozen=True)
class SendClear:
    """Tell the telephony side to drop agent audio it has buffered but not yet played."""


@dataclass(frozen=True)
class SendTranscript:
    role: Literal["agent", "caller"]
    text: str
    utterance_id: str


@dataclass(frozen=True)
class WriteRecords:
    """Store the transcript, then write the SOAP note from it (the call is over)."""

    flags: list[str] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)  # the dialogue's slots, into the note verbatim


@dataclass(frozen=True)
class EndCall:
    reason: str


Action = (
    Transcribe | InterpretUtterance | GenerateReply | Synthesize | CancelReply | SendAudio | SendClear
    | SendTranscript | SendTransfer | WriteRecords | EndCall
)
