"""CallActor: one Ray actor per live call, a thin shell around the I/O-free `CallSession`.

It turns gateway exchanges and engine results into session events and carries out the session's
actions: speech-to-text and the LLM by Serve handle, TTS and storage through IO actors, all as tasks on
its own event loop so a slow engine never holds up the call's 20 ms audio. The actor is started
ahead of time by the directory's warm pool and bound to a call id when the phone rings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import numpy as np
import ray

from actors import names
from actors.outbound import Binding, ExchangeResult, OutboundItem
from actors.stream_server import StreamServer
from iasovoice.audio.pcm import array_to_pcm16, frame_samples, int16_to_float32, pcm16_to_array
from iasovoice.audio.resample import resample
from iasovoice.config import AppConfig
from iasovoice.core import events as ev
from iasovoice.core.loopback import LoopbackSession
from iasovoice.core.session import CallSession, FallbackScripts, Phase, SafetySettings, SessionSettings
from iasovoice.core.turns import TurnSettings
from iasovoice.factory import build_vad

log = logging.getLogger(__name__)
ASR_RATE = 16000


# Connect's `CallType` attribute (seed, step 5) -> the Rasa external intent that opens such a call.
OPENING_TRIGGERS = {"ScheduledCheckIn": "EXTERNAL_checkin", "MedicationReminder": "EXTERNAL_medication_reminder"}


def session_settings(
    config: AppConfig, call_id: str, sample_rate: int, attributes: dict[str, str] | None = None
) -> SessionSettings:
    vad = config.vad
    safety = config.dialogue.safety
    return SessionSettings(
        call_id=call_id,
        sample_rate=sample_rate,
        greeting=config.call.greeting,
        greeting_interruptible=config.call.greeting_interruptible,
        voice=config.call.voice,
        system_prompt=config.llm.system_prompt,
        history_turns=config.call.history_turns,
        safety=SafetySettings(
            emergency_message=safety.emergency_message,
            crisis_message=safety.crisis_message,
            emergency_target=safety.emergency_target,
            crisis_target=safety.crisis_target,
            staff_target=safety.staff_target,
        ),
        scripts=FallbackScripts(**config.call.scripts.model_dump()),
        use_dialogue_engine=config.dialogue.engine == "rasa",
        llm_context=config.dialogue.llm_context,
        opening_trigger=OPENING_TRIGGERS.get((attributes or {}).get("CallType", "")),
        turn=TurnSettings(
            threshold=vad.threshold,
            start_speech_ms=vad.start_speech_ms,
            end_silence_ms=vad.end_silence_ms,
            pre_roll_ms=vad.pre_roll_ms,
            max_utterance_ms=int(vad.max_utterance_s * 1000),
            min_utterance_ms=vad.min_utterance_ms,
        ),
        jitter_max_wait_s=config.audio.jitter_max_wait_ms / 1000.0,
        playout_lead_ms=config.audio.playout_lead_ms,
        max_call_s=config.call.max_call_s,
    )


@ray.remote(num_cpus=0, max_restarts=0)
class CallActor:
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        # The models are reached through a router actor, not Serve handles: see actors/model_router.py.
        self._models = ray.get_actor(names.model_router_name(os.getpid() % config.ray.model_routers))
        self._tts = [ray.get_actor(names.tts_actor_name(i)) for i in range(config.tts.num_actors)]
        self._storage = ray.get_actor(names.STORAGE)
        self._metrics = ray.get_actor(names.METRICS)
        self._directory = ray.get_actor(names.DIRECTORY)
        self._dialogue = (
            [ray.get_actor(names.dialogue_actor_name(i)) for i in range(config.dialogue.num_actors)]
            if config.dialogue.engine == "rasa" else []
        )
        self._escalation = (
            ray.get_actor(names.ESCALATION) if config.dialogue.safety.set_contact_attributes else None
        )
        # Load the VAD model now, at the phone rate, so binding a call costs nothing (an echo test needs none).
        self._warm_vad = {} if config.call.loopback else {8000: build_vad(config.vad, 8000)}
        self._session: CallSession | LoopbackSession | None = None
        self._stream: StreamServer | None = None
        self._call_id: str | None = None
        self._attributes: dict[str, str] = {}
        self._outbox: list[OutboundItem] = []
        self._next_seq = 0
        self._tasks: dict[str, set[asyncio.Task[None]]] = {}
        self._ended = asyncio.Event()
        self._ended_reason: str | None = None
        self._last_exchange = time.monotonic()
        self._awaiting_first_audio: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._deadlines = config.call.deadlines
        # Checkpoints: the session's revision last stored, and a wake-up for the one writer task.
        self._saved_revision = -1
        self._checkpoint_due = asyncio.Event()
        self._checkpointer: asyncio.Task[None] | None = None
        # Set while the caller's socket is gone and the call waits `call.reconnect_grace_s` for it.
        self._reconnect_wait: asyncio.Task[None] | None = None

    # --------------------------------------------------------------------------------- gateway API
    async def ready(self) -> bool:
        return True

    async def bind(
        self, call_id: str, sample_rate: int, attributes: dict[str, str] | None = None, resume: bool = False
    ) -> Binding:
        """Attach this warm actor to a call; idempotent for the same call id (a reconnecting socket).

        `resume`: the call's previous actor died; go on from the state it checkpointed to storage.
        """
        if self._session is not None:
            if call_id != self._call_id:
                raise RuntimeError("call actor already bound to another call")
            self._reconnected()
            return self._binding()
        self._call_id = call_id
        self._attributes = dict(attributes or {})
        settings = session_settings(self._config, call_id, sample_rate, self._attributes)
        if self._config.call.loopback:
            self._session = LoopbackSession(settings)
        else:
            vad = self._warm_vad.get(sample_rate) or build_vad(self._config.vad, sample_rate)
            self._session = CallSession(settings, vad)
        if self._config.server.transport == "stream":
            # Loopback only for a local Ray; on a cluster the gateway may be on another node.
            host = "127.0.0.1" if self._config.ray.address is None else ray.util.get_node_ip_address()
            self._stream = StreamServer(self, host, self._config.server.stream_tls)  # TLS: docs/security.md
            await self._stream.start()
        self._last_exchange = time.monotonic()
        state = await self._stored_state(call_id) if resume else None
        if state is not None and isinstance(self._session, CallSession):
            for action in self._session.resume(state, time.monotonic()):
                self._execute(action)
            self._record("CallActorRestarts", 1, "Count")
            log.warning("call %s resumed on a new call actor (%d turns recovered)", call_id, len(state["turns"]))
        else:
            self._apply(ev.CallStarted(time.monotonic()))
        loop = asyncio.get_running_loop()
        self._watchdog = loop.create_task(self._watch_idle())
        if isinstance(self._session, CallSession):
            self._checkpointer = loop.create_task(self._checkpoint_loop())
            self._checkpoint_due.set()  # the call exists in storage from its first moment
        log.info("call %s bound (%d Hz, %s)", call_id, sample_rate, self._config.server.transport)
        return self._binding()

    async def _stored_state(self, call_id: str) -> dict[str, Any] | None:
        try:
            data = await asyncio.wait_for(self._storage.get.remote(call_id, "state"), self._deadlines.storage_s)
        except Exception as error:  # noqa: BLE001 - without it the call still goes on, from the start
            log.error("call %s: reading the stored call state failed: %s", call_id, type(error).__name__)
            return None
        if data is None:
            log.warning("call %s: no stored state to resume from; starting the call again", call_id)
            return None
        return json.loads(data)

    def _binding(self) -> Binding:
        if self._stream is None:
            return Binding(self._next_seq)
        return Binding(self._next_seq, self._stream.address, self._stream.token)

    def stream_lost(self) -> None:
        """The gateway's stream broke without a bye: hang up now (transcript and note still written)."""
        if self._session is not None and not self._ended.is_set():
            log.warning("call %s: gateway stream lost; hanging up", self._call_id)
            self._apply(ev.HangupRequested("gateway_lost", time.monotonic()))

    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        """Caller audio in (contiguous 20 ms frames from `first_seq`), agent audio and events out."""
        session = self._require_session()
        now = time.monotonic()
        self._last_exchange = now
        if pcm:
            samples = pcm16_to_array(pcm)
            n = frame_samples(session.settings.sample_rate)
            for index, start in enumerate(range(0, len(samples) - n + 1, n)):
                self._apply(ev.AudioReceived(first_seq + index, samples[start:start + n], now))
            self._next_seq = max(self._next_seq, first_seq + len(samples) // n)
        self._apply(ev.Tick(now))
        items, self._outbox = self._outbox, []
        return ExchangeResult(items, self._next_seq, self._ended_reason)

    async def dtmf(self, digits: str) -> None:
        if self._session is not None:
            self._apply(ev.DtmfReceived(digits, time.monotonic()))

    async def hangup(self, reason: str = "caller_hangup") -> None:
        if self._session is not None:
            self._apply(ev.HangupRequested(reason, time.monotonic()))

    async def connection_lost(self) -> None:
        """The caller's socket dropped without a close: wait `call.reconnect_grace_s` for a reconnect."""
        if self._session is None or self._ended.is_set() or self._reconnect_wait is not None:
            return
        grace = self._config.call.reconnect_grace_s
        log.warning("call %s: caller connection lost; holding the call %.0f s for a reconnect", self._call_id, grace)
        self._reconnect_wait = asyncio.get_running_loop().create_task(self._hang_up_after(grace))

    def _reconnected(self) -> None:
        if self._reconnect_wait is not None:
            self._reconnect_wait.cancel()
            self._reconnect_wait = None
            self._last_exchange = time.monotonic()
            log.info("call %s: caller reconnected; the call goes on", self._call_id)

    async def _hang_up_after(self, grace_s: float) -> None:
        await asyncio.sleep(grace_s)
        self._reconnect_wait = None
        if not self._ended.is_set():
            log.warning("call %s: no reconnect within %.0f s; ending the call", self._call_id, grace_s)
            self._apply(ev.HangupRequested("connection_lost", time.monotonic()))

    async def wait_ended(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ended.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def status(self) -> dict[str, Any]:
        session = self._session
        return {
            "call_id": self._call_id,
            "pid": os.getpid(),
            "phase": session.phase if session else "warm",
            "turns": len(session.transcript) if session else 0,
            "barge_ins": session.barge_ins if session else 0,
            "jitter": vars(session.jitter_stats) if session else {},
        }

    # ------------------------------------------------------------------------------------ internals
    def _require_session(self) -> CallSession | LoopbackSession:
        if self._session is None:
            raise RuntimeError("call actor is not bound to a call")
        return self._session

    def _apply(self, event: ev.Event) -> None:
        session = self._require_session()
        for action in session.handle(event):
            self._execute(action)
        if self._checkpointer is not None and session.revision != self._saved_revision:
            self._checkpoint_due.set()

    async def _checkpoint_loop(self) -> None:
        """Store the call's state whenever it changed, one write at a time, the newest state winning.

        Each caller utterance and agent turn is in storage (encrypted) within one write of being
        recognised, so a replacement actor can go on with the call (`bind(resume=True)`).
        """
        session = self._require_session()
        assert isinstance(session, CallSession)
        call_id = self._call_id or ""
        while not self._ended.is_set():
            await self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if session.phase not in (Phase.NEW, Phase.ACTIVE):
                return  # hung up: the final transcript record takes over from here
            revision = session.revision
            state = json.dumps(session.snapshot(time.monotonic())).encode()
            try:
                await asyncio.wait_for(self._storage.put.remote(call_id, "state", state), self._deadlines.storage_s)
            except Exception as error:  # noqa: BLE001 - retried with the next change; the call goes on
                log.error("call %s: storing the call state failed: %s", call_id, type(error).__name__)
                self._deadline_or_error("storage", error)
                continue
            self._saved_revision = revision

    def _execute(self, action: ev.Action) -> None:
        match action:
            case ev.SendAudio(frames=frames):
                if self._awaiting_first_audio is not None:
                    latency = time.monotonic() - self._awaiting_first_audio
                    self._awaiting_first_audio = None
                    self._record("ResponseLatency", latency * 1000, "Milliseconds")
                self._outbox.extend(OutboundItem("audio", array_to_pcm16(f)) for f in frames)
            case ev.SendClear():
                # Audio not yet taken by the gateway is dropped here; the client drops what it has.
                self._outbox = [item for item in self._outbox if item.kind != "audio"]
                self._outbox.append(OutboundItem("clear"))
            case ev.SendTranscript(role=role, text=text, utterance_id=uid):
                self._outbox.append(OutboundItem("transcript", data={"role": role, "text": text, "utterance_id": uid}))
            case ev.SendTransfer(kind=kind, target=target, source=source):
                self._outbox.append(OutboundItem("transfer", data={"kind": kind, "target": target}))
                self._record(f"Escalation_{kind}", 1, "Count")
                log.warning("call %s: transfer requested (%s, by %s)", self._call_id, kind, source)
                if self._escalation is not None:
                    self._escalation.set.remote(self._call_id, kind)
            case ev.Transcribe():
                self._spawn("asr", self._transcribe(action))
            case ev.InterpretUtterance():
                self._spawn("dialogue", self._interpret(action))
            case ev.GenerateReply(reply_id=rid, messages=messages):
                self._spawn(rid, self._generate(rid, messages))
            case ev.Synthesize():
                self._spawn(action.reply_id, self._synthesize(action))
            case ev.CancelReply(reply_id=rid):
                for task in self._tasks.pop(rid, set()):
                    task.cancel()
            case ev.WriteRecords(flags=flags, slots=slots):
                self._spawn("records", self._write_records(flags, slots))
            case ev.EndCall(reason=reason):
                self._end(reason)

    def _spawn(self, group: str, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._tasks.setdefault(group, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _record(self, name: str, value: float, unit: str) -> None:
        self._metrics.record.remote(name, value, unit)

    def _deadline_or_error(self, step: str, error: BaseException) -> None:
        """Count a remote step that missed its deadline (`DeadlineExpired_<step>`; errors are counted apart)."""
        if isinstance(error, TimeoutError):
            log.warning("call %s: %s missed its deadline (call.deadlines)", self._call_id, step)
            self._record(f"DeadlineExpired_{step}", 1, "Count")

    async def _transcribe(self, action: ev.Transcribe) -> None:
        started = time.monotonic()
        try:
            audio = int16_to_float32(resample(action.samples, action.sample_rate, ASR_RATE))
            result = await asyncio.wait_for(self._models.transcribe.remote(audio), self._deadlines.asr_s)
        except Exception as error:  # noqa: BLE001 - a failed utterance must not end the call
            log.warning("call %s: transcription %s failed: %s", self._call_id, action.utterance_id,
                        type(error).__name__)
            self._record("TranscriptionErrors", 1, "Count")
            self._deadline_or_error("asr", error)
            self._apply(ev.TranscriptionFailed(action.utterance_id, type(error).__name__, time.monotonic()))
            return
        self._record("TranscriptionLatency", (time.monotonic() - started) * 1000, "Milliseconds")
        log.debug("call %s: %s transcribed", self._call_id, action.utterance_id)
        self._awaiting_first_audio = started
        self._apply(ev.TranscriptReady(action.utterance_id, result.text, time.monotonic()))

    async def _interpret(self, action: ev.InterpretUtterance) -> None:
        """Rasa's turn through a dialogue IO actor; any failure or overrun is `DialogueUnavailable`."""
        actor = self._dialogue[hash(self._call_id) % len(self._dialogue)]
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(
                actor.interpret.remote(self._call_id, action.text, action.trigger),
                self._config.dialogue.rasa.timeout_s + 0.5,
            )
        except Exception as error:  # noqa: BLE001 - the call goes on without Rasa
            result = f"dialogue actor: {type(error).__name__}"
        now = time.monotonic()
        if isinstance(result, str):
            self._apply(ev.DialogueUnavailable(action.utterance_id, result, now))
            return
        self._record("DialogueLatency", (now - started) * 1000, "Milliseconds")
        self._apply(ev.DialogueResolved(action.utterance_id, result, now))

    async def _generate(self, reply_id: str, messages: list[dict[str, str]]) -> None:
        """Stream a reply: its first text within `llm_first_text_s`, all of it within `llm_total_s`."""
        deadlines = self._deadlines
        loop = asyncio.get_running_loop()
        total_deadline = loop.time() + deadlines.llm_total_s
        stream = self._models.stream_reply.remote(messages)
        try:
            async with asyncio.timeout(min(deadlines.llm_first_text_s, deadlines.llm_total_s)) as deadline:
                async for ref in stream:
                    deadline.reschedule(total_deadline)
                    self._apply(ev.ReplyTextDelta(reply_id, await ref, time.monotonic()))
        except asyncio.CancelledError:
            ray.cancel(stream)
            raise
        except Exception as error:  # noqa: BLE001 - the caller hears `call.scripts.reply_failed`
            if isinstance(error, TimeoutError):
                ray.cancel(stream)
            self._deadline_or_error("llm", error)
            self._apply(ev.ReplyFailed(reply_id, type(error).__name__, time.monotonic()))
            return
        self._apply(ev.ReplyTextDone(reply_id, time.monotonic()))

    async def _synthesize(self, action: ev.Synthesize) -> None:
        session = self._require_session()
        tts = self._tts[hash(self._call_id) % len(self._tts)]
        try:
            samples = await asyncio.wait_for(
                tts.synthesize.remote(action.text, action.voice, session.settings.sample_rate), self._deadlines.tts_s
            )
        except Exception as error:  # noqa: BLE001
            log.warning("call %s: TTS failed: %s", self._call_id, type(error).__name__)
            self._deadline_or_error("tts", error)
            self._apply(ev.SpeechFailed(action.reply_id, action.segment, type(error).__name__, time.monotonic()))
            return
        self._apply(ev.SpeechReady(action.reply_id, action.segment, np.asarray(samples), time.monotonic()))

    async def _write_records(self, flags: list[str], slots: dict[str, Any]) -> None:
        """Transcript first (it must survive whatever happens to the note), then the SOAP note."""
        session = self._require_session()
        call_id = self._call_id or ""
        turns = [turn.model_dump(mode="json") for turn in session.transcript]
        ok = True
        try:
            record = {"call_id": call_id, "flags": flags, "dialogue_slots": slots, "turns": turns}
            await asyncio.wait_for(
                self._storage.put.remote(call_id, "transcript", json.dumps(record).encode()), self._deadlines.storage_s
            )
            started = time.monotonic()
            note = await asyncio.wait_for(
                self._models.write_note.remote(call_id, turns, flags, self._attributes or None, slots or None),
                self._config.call.note_timeout_s,
            )
            self._record("SOAPGenerationTime", time.monotonic() - started, "Seconds")
            await asyncio.wait_for(self._storage.put.remote(call_id, "note", note), self._deadlines.storage_s)
            self._outbox.append(OutboundItem("note_ready", data={"call_id": call_id}))
            log.info("call %s: note stored", call_id)
        except Exception as error:  # noqa: BLE001 - the transcript is already safe; report and end
            ok = False
            log.error("call %s: writing records failed: %s", call_id, type(error).__name__)
            self._record("NoteErrors", 1, "Count")
        self._apply(ev.NoteStored(time.monotonic(), ok=ok))

    def _end(self, reason: str) -> None:
        self._ended_reason = reason
        self._outbox.append(OutboundItem("ended", data={"reason": reason}))
        self._ended.set()
        self._checkpoint_due.set()  # lets the checkpoint writer see the end and stop
        for task in (self._watchdog, self._reconnect_wait):
            if task is not None:
                task.cancel()
        self._directory.release.remote(self._call_id)

    async def _watch_idle(self) -> None:
        """A call whose gateway vanished (process crash, network split) is hung up, not leaked."""
        limit = self._config.call.idle_hangup_s
        while not self._ended.is_set():
            await asyncio.sleep(min(1.0, limit / 4))
            if self._reconnect_wait is not None:
                continue  # the socket is known to be gone; `call.reconnect_grace_s` decides instead
            if time.monotonic() - self._last_exchange > limit and self._session is not None:
                log.warning("call %s: no gateway traffic for %.0f s; hanging up", self._call_id, limit)
                self._apply(ev.HangupRequested("gateway_lost", time.monotonic()))
                return
