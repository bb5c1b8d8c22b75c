"""CallSession: one call's logic as a pure state machine (events in, actions out).

It owns the jitter buffer, voice activity and turn detection, barge-in, the agent's playout queue, the
dialogue state and the transcript. It never sleeps, reads a clock or does I/O: the caller passes `now`
with every event, which is what makes a scripted timeline test deterministic and fast.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from iasovoice.audio.pcm import frame_samples
from iasovoice.core import events as ev
from iasovoice.core.dialogue import DialogueState, LLMReply, ReplyPlan, SafetyKind, ScriptedReply
from iasovoice.core.playout import Playout
from iasovoice.core.replies import ReplyHandle, ReplyKind
from iasovoice.core.turns import SpeechOnset, TurnDetector, TurnSettings, Utterance
from iasovoice.dialogue import safety_rules
from iasovoice.jitter import JitterBuffer, JitterStats
from iasovoice.notes.schema import TranscriptTurn
from iasovoice.vad.base import VoiceActivityDetector

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
_SPEAKABLE = re.compile(r"[A-Za-z0-9]")
# Flags on the note: `*_detected` when a layer escalates, `*_given` once the script's audio has played.
DETECTED_FLAG: dict[SafetyKind, str] = {"emergency": "emergency_detected", "crisis": "crisis_detected"}
GIVEN_FLAG: dict[SafetyKind, str] = {"emergency": "emergency_message_given", "crisis": "crisis_line_given"}
INCOMPLETE_FLAG: dict[SafetyKind, str] = {
    "emergency": "emergency_message_incomplete", "crisis": "crisis_line_incomplete"
}


@dataclass(frozen=True)
class SafetySettings:
    """The fixed safety scripts and transfer targets (configs: `dialogue.safety`)."""

    emergency_message: str
    crisis_message: str
    emergency_target: str = "emergency_services"
    crisis_target: str = "crisis_line"
    staff_target: str = "staff"

    def message(self, kind: SafetyKind) -> str:
        return self.emergency_message if kind == "emergency" else self.crisis_message

    def target(self, kind: Literal["emergency", "crisis", "staff"]) -> str:
        return {"emergency": self.emergency_target, "crisis": self.crisis_target}.get(kind, self.staff_target)


@dataclass(frozen=True)
class FallbackScripts:
    """What the agent says when its own side fails (configs: `call.scripts`)."""

    not_understood: str
    reply_failed: str
    asr_failed: str
    resumed: str


@dataclass(frozen=True)
class SessionSettings:
    call_id: str
    sample_rate: int = 8000
    greeting: str = ""  # the words live in configs/app.yaml (call.greeting); a session is built from them
    greeting_interruptible: bool = False
    voice: str = "default"
    system_prompt: str = ""  # configs/app.yaml: llm.system_prompt
    history_turns: int = 12
    safety: SafetySettings | None = None  # required: a call without its safety scripts does not start
    scripts: FallbackScripts | None = None  # required too: a failure must be answered in words
    use_dialogue_engine: bool = False  # Rasa answers each utterance (the rules always run first)
    llm_context: str = "{slots}"
    opening_trigger: str | None = None  # outbound call: Rasa's external intent that opens it
    turn: TurnSettings = field(default_factory=TurnSettings)
    jitter_max_wait_s: float = 0.06
    playout_lead_ms: int = 120
    max_call_s: float = 1800.0
    frame_ms: int = 20


class Phase:
    NEW = "new"
    ACTIVE = "active"
    ENDING = "ending"  # hung up; waiting for the last transcriptions
    WRITING = "writing"  # transcript and note being stored
    ENDED = "ended"


class CallSession:
    def __init__(self, settings: SessionSettings, vad: VoiceActivityDetector) -> None:
        if vad.sample_rate != settings.sample_rate:
            raise ValueError(f"VAD runs at {vad.sample_rate} Hz but the call is {settings.sample_rate} Hz")
        if settings.safety is None:
            raise ValueError("a call needs its safety scripts (config: dialogue.safety)")
        if settings.scripts is None:
            raise ValueError("a call needs its fallback scripts (config: call.scripts)")
        self._safety_settings = settings.safety
        self._scripts = settings.scripts
        self.settings = settings
        self.phase = Phase.NEW
        self._frame_samples = frame_samples(settings.sample_rate, settings.frame_ms)
        self._vad = vad
        self._jitter = JitterBuffer(self._frame_samples, max_wait_s=settings.jitter_max_wait_s)
        self._turns = TurnDetector(settings.turn)
        self._playout = Playout(self._frame_samples, settings.frame_ms, settings.playout_lead_ms)
        self.dialogue = DialogueState(settings.system_prompt, settings.history_turns, settings.llm_context)
        self._reply: ReplyHandle | None = None
        # Replies waiting for a non-interruptible one: safety scripts in order (never dropped), then the
        # newest ordinary plan (an older one is superseded by it).
        self._safety_queue: deque[ScriptedReply] = deque()
        self._deferred: ReplyPlan | None = None
        # Safety scripts started but not yet heard to the end: reply id -> (kind, handle).
        self._unconfirmed: dict[str, tuple[SafetyKind, ReplyHandle]] = {}
        self._transfers_sent: set[str] = set()
        # Caller utterances waiting for Rasa: id -> the escalations already made for it.
        self._awaiting_dialogue: dict[str, set[SafetyKind]] = {}
        self._latest_caller_uid: str | None = None
        self._opening_uid: str | None = None
        self._last_now = 0.0
        self._reply_count = 0
        self._utterance_count = 0
        # Transcriptions run concurrently; results are committed to the transcript in utterance order.
        self._pending: dict[str, tuple[Utterance, str | None] | None] = {}
        self._started_at: float | None = None
        self.barge_ins = 0

    # ------------------------------------------------------------------------------------ public API
    @property
    def transcript(self) -> list[TranscriptTurn]:
        return self.dialogue.turns

    @property
    def agent_speaking(self) -> bool:
        return self._reply is not None and self._reply.active

    @property
    def jitter_stats(self) -> JitterStats:
        return self._jitter.stats

    @property
    def revision(self) -> int:
        """Changes whenever something a resumed call needs changes (see `snapshot`)."""
        return self.dialogue.revision

    def snapshot(self, now: float) -> dict[str, Any]:
        """What a replacement call actor needs to go on with this call (JSON-able; PHI: stored encrypted).

        Audio in flight (the jitter buffer, an utterance being transcribed, a reply being spoken) is not
        kept: a crash loses at most that, and the resumed call asks the caller to repeat it.
        """
        dialogue = self.dialogue
        return {
            "version": SNAPSHOT_VERSION,
            "call_id": self.settings.call_id,
            "elapsed_s": 0.0 if self._started_at is None else now - self._started_at,
            "turns": [turn.model_dump(mode="json") for turn in dialogue.turns],
            "flags": list(dialogue.flags),
            "slots": dict(dialogue.slots),
            "intents": dict(dialogue.intents),
            "dtmf": dialogue.dtmf,
            "utterance_count": self._utterance_count,
            "reply_count": self._reply_count,
            "barge_ins": self.barge_ins,
            "transfers_sent": sorted(self._transfers_sent),
        }

    def resume(self, snapshot: dict[str, Any], now: float) -> list[ev.Action]:
        """Go on with a call from another actor's `snapshot`, instead of `CallStarted`.

        A safety script that was decided but not heard to the end is spoken again, whole (its transfer
        was already sent and is not repeated); otherwise the caller hears `call.scripts.resumed`.
        """
        if self.phase != Phase.NEW:
            raise RuntimeError("only a new session can resume a call")
        if snapshot.get("version") != SNAPSHOT_VERSION or snapshot.get("call_id") != self.settings.call_id:
            raise ValueError("the stored call state is not this call's, or from another version")
        dialogue = self.dialogue
        dialogue.turns = [TranscriptTurn.model_validate(turn) for turn in snapshot["turns"]]
        dialogue.flags = list(snapshot["flags"])
        dialogue.slots = dict(snapshot["slots"])
        dialogue.intents = dict(snapshot["intents"])
        dialogue.dtmf = snapshot["dtmf"]
        self._utterance_count = int(snapshot["utterance_count"])
        self._reply_count = int(snapshot["reply_count"])
        self.barge_ins = int(snapshot["barge_ins"])
        self._transfers_sent = set(snapshot["transfers_sent"])
        self._started_at = now - float(snapshot["elapsed_s"])
        self._last_now = now
        self.phase = Phase.ACTIVE
        dialogue.flag("call_actor_recovered")
        unheard = [
            kind for kind in ("emergency", "crisis")
            if DETECTED_FLAG[kind] in dialogue.flags and GIVEN_FLAG[kind] not in dialogue.flags
        ]
        actions: list[ev.Action] = []
        for kind in unheard:
            actions += self._escalate(kind, "resume")
        if not unheard:
            actions += self._plan(ScriptedReply(self._scripts.resumed))
        return actions

    def handle(self, event: ev.Event) -> list[ev.Action]:
        """Apply one event and return the actions it calls for, audio for the caller last."""
        actions: list[ev.Action] = []
        self._last_now = getattr(event, "now", self._last_now)
        match event:
            case ev.CallStarted(now=now):
                actions += self._start(now)
            case ev.AudioReceived(seq=seq, samples=samples, now=now):
                if self.phase == Phase.ACTIVE:
                    self._jitter.push(seq, samples, now)
                    actions += self._drain_jitter(now)
            case ev.Tick(now=now):
                actions += self._on_tick(now)
            case ev.TranscriptReady() | ev.TranscriptionFailed():
                actions += self._on_transcription(event)
            case ev.ReplyTextDelta(reply_id=rid, text=text):
                actions += self._on_reply_text(rid, text)
            case ev.ReplyTextDone(reply_id=rid):
                actions += self._on_reply_done(rid)
            case ev.ReplyFailed(reply_id=rid, reason=reason):
                actions += self._on_reply_failed(rid, reason)
            case ev.SpeechReady(reply_id=rid, segment=seg, samples=samples):
                actions += self._on_speech(rid, seg, samples)
            case ev.SpeechFailed(reply_id=rid, segment=seg):
                self.dialogue.flag("tts_failed")
                actions += self._on_speech(rid, seg, None)
            case ev.DtmfReceived(digits=digits):
                self.dialogue.add_dtmf(digits)
            case ev.DialogueResolved() | ev.DialogueUnavailable():
                actions += self._on_dialogue(event)
            case ev.HangupRequested(reason=reason, now=now):
                actions += self._hangup(reason, now)
            case ev.NoteStored(now=now):
                if self.phase == Phase.WRITING:
                    self.phase = Phase.ENDED
                    actions.append(ev.EndCall("completed"))
        now = getattr(event, "now", None)
        if now is not None and self.phase == Phase.ACTIVE:
            frames = self._playout.release(now)
            if frames:
                actions.append(ev.SendAudio(frames))
            if self._unconfirmed:
                self._confirm_safety_played(now)
        return actions

    # ------------------------------------------------------------------------------------- lifecycle
    def _start(self, now: float) -> list[ev.Action]:
        if self.phase != Phase.NEW:
            return []
        self.phase = Phase.ACTIVE
        self._started_at = now
        if self.settings.opening_trigger and self.settings.use_dialogue_engine:
            # An outbound call opens with Rasa's script for its type (check-in, medication reminder).
            self._opening_uid = "open"
            self._awaiting_dialogue[self._opening_uid] = set()
            self._latest_caller_uid = self._opening_uid
            return [ev.InterpretUtterance(self._opening_uid, "", trigger=self.settings.opening_trigger)]
        return self._greet()

    def _greet(self) -> list[ev.Action]:
        return self._start_scripted(
            self.settings.greeting, "greeting", interruptible=self.settings.greeting_interruptible
        )

    def _on_tick(self, now: float) -> list[ev.Action]:
        if self.phase != Phase.ACTIVE:
            return []
        if self._started_at is not None and now - self._started_at > self.settings.max_call_s:
            return self._hangup("max_call_duration", now)
        return self._drain_jitter(now)

    def _hangup(self, reason: str, now: float) -> list[ev.Action]:
        if self.phase not in (Phase.NEW, Phase.ACTIVE):
            return []
        log.info("call %s: hang-up (%s)", self.settings.call_id, reason)
        actions: list[ev.Action] = []
        if self.phase == Phase.ACTIVE:
            # Everything the caller said up to the hang-up still goes to ASR, gaps concealed.
            for frame in self._jitter.flush(now):
                self._turns.process(frame.samples, self._vad(frame.samples))
            for turn_event in self._turns.flush():
                if isinstance(turn_event, Utterance):
                    self.dialogue.flag("partial_utterance_at_hangup")
                    actions.append(self._transcribe(turn_event))
        if self._reply is not None and self._reply.active:
            self._reply.cancelled = True
            actions.append(ev.CancelReply(self._reply.reply_id))
        actions += self._record_agent_turn(cut_at=now)
        self._confirm_safety_played(now)
        self._mark_unheard_safety()
        self._playout.clear(now)
        self.phase = Phase.ENDING
        return actions + self._maybe_write()

    def _maybe_write(self) -> list[ev.Action]:
        if self.phase != Phase.ENDING or self._pending:
            return []
        self.phase = Phase.WRITING
        return [ev.WriteRecords(list(self.dialogue.flags), dict(self.dialogue.slots))]

    # ----------------------------------------------------------------------------------- caller audio
    def _drain_jitter(self, now: float) -> list[ev.Action]:
        actions: list[ev.Action] = []
        for frame in self._jitter.pop_ready(now):
            probability = self._vad(frame.samples)
            for turn_event in self._turns.process(frame.samples, probability):
                if isinstance(turn_event, SpeechOnset):
                    actions += self._barge_in(now)
                else:
                    actions.append(self._transcribe(turn_event))
        return actions

    def _barge_in(self, now: float) -> list[ev.Action]:
        """Caller speech while the agent talks: stop playback at once and drop the rest of the reply."""
        reply = self._reply
        if reply is not None and not reply.interruptible and (reply.active or self._playout.is_playing(now)):
            return []
        actions: list[ev.Action] = []
        if reply is not None and reply.active:
            reply.cancelled = True
            actions.append(ev.CancelReply(reply.reply_id))
        if self._playout.clear(now):
            actions.append(ev.SendClear())
        if actions:
            self.barge_ins += 1
            log.debug("call %s: barge-in", self.settings.call_id)
            actions += self._record_agent_turn(cut_at=now)
        return actions

    def _transcribe(self, utterance: Utterance) -> ev.Transcribe:
        self._utterance_count += 1
        uid = f"u{self._utterance_count}"
        self._pending[uid] = None
        return ev.Transcribe(uid, utterance.samples, self.settings.sample_rate, partial=utterance.partial)

    def _on_transcription(self, event: ev.TranscriptReady | ev.TranscriptionFailed) -> list[ev.Action]:
        uid = event.utterance_id
        if uid not in self._pending:
            return []
        failed_latest = False
        if isinstance(event, ev.TranscriptionFailed):
            self.dialogue.flag("asr_failed")
            self._pending[uid] = (None, None)  # type: ignore[assignment]
            # The caller said something nobody understood: say so, unless they have spoken again since.
            failed_latest = uid == next(reversed(self._pending))
        else:
            self._pending[uid] = (None, event.text.strip())  # type: ignore[assignment]
        actions: list[ev.Action] = []
        # Commit finished transcriptions in utterance order.
        while self._pending:
            first_uid, result = next(iter(self._pending.items()))
            if result is None:
                break
            del self._pending[first_uid]
            text = result[1]
            if text and _SPEAKABLE.search(text):
                actions += self._on_caller_text(first_uid, text)
        if failed_latest and self.phase == Phase.ACTIVE:
            actions += self._plan(ScriptedReply(self._scripts.asr_failed))
        return actions + self._maybe_write()

    def _on_caller_text(self, uid: str, text: str) -> list[ev.Action]:
        """A final caller utterance: the safety rules at once, then Rasa (or the LLM) for the answer."""
        self.dialogue.add_turn(TranscriptTurn(role="caller", text=text, utterance_id=uid))
        actions: list[ev.Action] = [ev.SendTranscript("caller", text, uid)]
        hit = safety_rules.detect(text)
        if self.phase != Phase.ACTIVE:
            if hit is not None:  # said as the caller hung up: nobody heard a script, the clinician must know
                self.dialogue.flag(f"{hit.kind}_detected_after_hangup")
            return actions
        self._latest_caller_uid = uid
        actions += self._supersede_reply()
        escalated: set[SafetyKind] = set()
        if hit is not None:
            self.dialogue.flag(f"rule:{hit.category}")
            escalated.add(hit.kind)
            actions += self._escalate(hit.kind, "rules")
        if self.settings.use_dialogue_engine:
            # Rasa hears every utterance (its tracker must follow the call), even one already escalated.
            self._awaiting_dialogue[uid] = escalated
            return actions + [ev.InterpretUtterance(uid, text)]
        if escalated:
            return actions
        return actions + self._plan(LLMReply(self.dialogue.chat_messages()))

    def _supersede_reply(self) -> list[ev.Action]:
        """A newer utterance supersedes an interruptible reply still being written for an older one."""
        reply = self._reply
        if reply is None or not reply.active or not reply.interruptible:
            return []
        reply.cancelled = True
        return [ev.CancelReply(reply.reply_id), *self._record_agent_turn()]

    def _on_dialogue(self, event: ev.DialogueResolved | ev.DialogueUnavailable) -> list[ev.Action]:
        """Rasa's answer (or its absence) for one utterance: escalate, speak, hand to the LLM, or wait."""
        uid = event.utterance_id
        escalated = self._awaiting_dialogue.pop(uid, None)
        if escalated is None:
            return []
        opening = uid == self._opening_uid
        current = uid == self._latest_caller_uid and self.phase == Phase.ACTIVE
        actions: list[ev.Action] = []
        if isinstance(event, ev.DialogueUnavailable):
            self.dialogue.flag("dialogue_degraded")
            log.warning("call %s: dialogue engine unavailable (%s); rules and LLM carry the turn",
                        self.settings.call_id, event.reason)
            if opening and current:
                return self._greet()
            if escalated or not current:
                return []
            return self._plan(LLMReply(self.dialogue.chat_messages()))
        turn = event.turn
        self.dialogue.update_slots(turn.slots)
        if turn.intent and not opening:
            self.dialogue.set_intent(uid, turn.intent)
        if turn.escalation is not None and turn.escalation not in escalated and self.phase == Phase.ACTIVE:
            escalated.add(turn.escalation)
            actions += self._escalate(turn.escalation, "rasa")
        if escalated or not current:
            return actions  # the safety script answers; or a newer utterance is being answered
        if turn.transfer is not None:
            actions += self._transfer("staff", "rasa")
        if turn.responses:
            interruptible = self.settings.greeting_interruptible if opening else True
            return actions + self._plan(ScriptedReply(" ".join(turn.responses), interruptible=interruptible))
        if opening:
            return actions + self._greet()
        if turn.transfer is not None and not turn.llm_handoff:
            return actions
        return actions + self._plan(LLMReply(self.dialogue.chat_messages()))

    # ---------------------------------------------------------------------------------------- safety
    def _escalate(self, kind: SafetyKind, source: str) -> list[ev.Action]:
        """Either layer found an emergency or a crisis: the fixed script, then the transfer.

        The script starts at once unless a non-interruptible reply (the greeting, another safety
        script) is being produced, in which case it is next; it is never replaced by a later reply.
        """
        self.dialogue.flag(DETECTED_FLAG[kind])
        log.warning("call %s: %s escalation (%s)", self.settings.call_id, kind, source)
        actions = self._transfer(kind, source)
        if any(k == kind and not h.fully_queued for k, h in self._unconfirmed.values()) or any(
            plan.safety == kind for plan in self._safety_queue
        ):
            return actions  # the same script is already on its way
        script = ScriptedReply(self._safety_settings.message(kind), interruptible=False, safety=kind)
        reply = self._reply
        if reply is not None and reply.active and not reply.interruptible:
            self._safety_queue.append(script)
            return actions
        if reply is not None and reply.active:
            reply.cancelled = True
            actions.append(ev.CancelReply(reply.reply_id))
        if self._playout.clear(self._last_now):
            actions.append(ev.SendClear())
        actions += self._record_agent_turn(cut_at=self._last_now)
        return actions + self._start_plan(script)

    def _transfer(self, kind: Literal["emergency", "crisis", "staff"], source: str) -> list[ev.Action]:
        if kind in self._transfers_sent:
            return []
        self._transfers_sent.add(kind)
        self.dialogue.flag(f"transfer_requested:{kind}")
        return [ev.SendTransfer(kind, self._safety_settings.target(kind), source)]

    def _confirm_safety_played(self, now: float) -> None:
        """Set a script's "given" flag only once its last frame has played, not when it was planned."""
        for reply_id, (kind, reply) in list(self._unconfirmed.items()):
            if reply.fully_queued and self._playout.played_out(reply_id, now):
                del self._unconfirmed[reply_id]
                self.dialogue.flag(INCOMPLETE_FLAG[kind] if reply.failed_segments else GIVEN_FLAG[kind])

    def _mark_unheard_safety(self) -> None:
        """At hang-up, a safety script the caller did not hear to the end says so in the transcript."""
        for reply_id, (kind, _reply) in list(self._unconfirmed.items()):
            del self._unconfirmed[reply_id]
            self.dialogue.flag(INCOMPLETE_FLAG[kind])
            for turn in self.dialogue.turns:
                if turn.utterance_id == reply_id and turn.role == "agent":
                    turn.text += " [interrupted: the call ended before this message finished]"
        for plan in self._safety_queue:
            self.dialogue.flag(INCOMPLETE_FLAG[plan.safety or "emergency"])
        self._safety_queue.clear()

    # ------------------------------------------------------------------------------------ replies
    def _plan(self, plan: ReplyPlan) -> list[ev.Action]:
        """Start an ordinary reply now, or after the non-interruptible one being produced."""
        if self._reply is not None and self._reply.active and not self._reply.interruptible:
            self._deferred = plan  # the greeting or a safety script is not talked over
            return []
        return self._supersede_reply() + self._start_plan(plan)

    def _start_plan(self, plan: ReplyPlan) -> list[ev.Action]:
        if isinstance(plan, ScriptedReply):
            if plan.safety is not None:
                actions = self._start_scripted(plan.text, "safety", interruptible=False)
                assert self._reply is not None
                self._unconfirmed[self._reply.reply_id] = (plan.safety, self._reply)
                return actions
            return self._start_scripted(plan.text, "scripted", interruptible=plan.interruptible)
        reply = self._new_reply("llm", interruptible=True)
        # History as of now, so a caller turn that came in while the deferred plan waited is included.
        return [ev.GenerateReply(reply.reply_id, self.dialogue.chat_messages())]

    # ------------------------------------------------------------------------------------ agent audio
    def _new_reply(self, kind: ReplyKind, interruptible: bool) -> ReplyHandle:
        self._reply_count += 1
        self._reply = ReplyHandle(f"r{self._reply_count}", kind, interruptible=interruptible)
        return self._reply

    def _start_scripted(self, text: str, kind: ReplyKind, interruptible: bool) -> list[ev.Action]:
        reply = self._new_reply(kind, interruptible)
        reply.text_done = True
        actions: list[ev.Action] = [
            ev.Synthesize(reply.reply_id, reply.add_segment(sentence), sentence, self.settings.voice)
            for sentence in reply.splitter.feed(text + " ") + reply.splitter.flush()
        ]
        if not interruptible:
            # It will be heard whole, so it takes its place in the transcript now, before anything the
            # caller says over it.
            reply.recorded = True
            self.dialogue.add_turn(TranscriptTurn(role="agent", text=text, utterance_id=reply.reply_id))
            actions.append(ev.SendTranscript("agent", text, reply.reply_id))
        return actions

    def _current(self, reply_id: str) -> ReplyHandle | None:
        reply = self._reply
        if reply is None or reply.reply_id != reply_id or reply.cancelled or self.phase != Phase.ACTIVE:
            return None
        return reply

    def _on_reply_text(self, reply_id: str, text: str) -> list[ev.Action]:
        reply = self._current(reply_id)
        if reply is None or reply.text_done:
            return []
        return [
            ev.Synthesize(reply_id, reply.add_segment(sentence), sentence, self.settings.voice)
            for sentence in reply.splitter.feed(text)
        ]

    def _on_reply_done(self, reply_id: str) -> list[ev.Action]:
        reply = self._current(reply_id)
        if reply is None or reply.text_done:
            return []
        actions: list[ev.Action] = [
            ev.Synthesize(reply_id, reply.add_segment(sentence), sentence, self.settings.voice)
            for sentence in reply.splitter.flush()
        ]
        reply.text_done = True
        if not reply.segment_texts:
            return self._start_scripted(self._scripts.not_understood, "scripted", interruptible=True)
        return actions + self._after_queue(reply)

    def _on_reply_failed(self, reply_id: str, reason: str) -> list[ev.Action]:
        reply = self._current(reply_id)
        if reply is None:
            return []
        log.warning("call %s: reply %s failed: %s", self.settings.call_id, reply_id, reason)
        self.dialogue.flag("reply_failed")
        reply.cancelled = True
        return [ev.CancelReply(reply_id)] + self._start_scripted(self._scripts.reply_failed, "scripted", interruptible=True)

    def _on_speech(self, reply_id: str, segment: int, samples: np.ndarray | None) -> list[ev.Action]:
        reply = self._current(reply_id)
        if reply is None:
            return []
        for index, audio in reply.segment_ready(segment, samples):
            reply.queued_segment(index, self._playout.enqueue(reply_id, audio, protected=reply.kind == "safety"))
        return self._after_queue(reply)

    def _after_queue(self, reply: ReplyHandle) -> list[ev.Action]:
        if not reply.fully_queued:
            return []
        actions = self._record_agent_turn()
        if self.phase != Phase.ACTIVE:
            return actions
        if self._safety_queue:
            return actions + self._start_plan(self._safety_queue.popleft())
        if self._deferred is not None:
            plan, self._deferred = self._deferred, None
            actions += self._start_plan(plan)
        return actions

    def _record_agent_turn(self, cut_at: float | None = None) -> list[ev.Action]:
        """Put the current reply into the transcript as far as the caller heard it.

        A reply is recorded once its text is all queued (the next turn's history needs it). ``cut_at``
        is when playback was cleared (barge-in, hang-up): the turn is then cut to what had started
        playing by that time and marked "[interrupted]", amending a turn already recorded whole, so the
        transcript and the note never hold words the caller did not hear.
        """
        reply = self._reply
        if reply is None or (reply.recorded and (cut_at is None or not reply.interruptible)):
            return []
        frames_heard = None if cut_at is None else self._playout.frames_heard(reply.reply_id, cut_at)
        text, cut = reply.heard_text(frames_heard)
        cut = cut or (reply.cancelled and not reply.fully_queued)
        if reply.recorded:
            if not cut:
                return []
            text = f"{text} [interrupted]".strip()
            if not self.dialogue.amend_turn(reply.reply_id, text):
                return []
            return [ev.SendTranscript("agent", text, reply.reply_id)]
        reply.recorded = True
        if not text:
            return []
        if cut:
            text += " [interrupted]"
        self.dialogue.add_turn(TranscriptTurn(role="agent", text=text, utterance_id=reply.reply_id))
        return [ev.SendTranscript("agent", text, reply.reply_id)]