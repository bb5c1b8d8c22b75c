"""One websocket ↔ one call actor: frames caller audio in, relays agent audio and events out.

Per connection there are two loops. The reader parses messages into 20 ms frames (numbered in arrival
order) and keeps them until the next exchange. The pump, every `relay_interval_ms`, makes ONE actor
call that carries all frames buffered since the last one and brings back all agent audio and events
due since then: one round trip per interval per call, in both directions, whatever the frame rate.
The round trip goes over a `CallLink` (a Ray actor call, or the actor's direct stream); DTMF and
hang-up always go as Ray actor calls, the control plane.

The reader starts before the call actor is claimed (`start_reading`, then `attach`): a claim can take
seconds on a loaded node (a cold start), and a socket nobody reads stalls the carrier's audio and the
keepalive pong behind it until the call is dropped. Audio read meanwhile waits in the inbound buffer.

Faults: when the link to the call actor breaks (its process died), the relay asks the directory for the
call again (`Recover`), which resumes it on a new actor from its checkpoint, and goes on on the same
socket; only the exchange in flight is lost. When the caller's socket drops without a close frame, or
stalls past `server.send_timeout_s`, the actor is told `connection_lost` and holds the call for
`call.reconnect_grace_s`, so a reconnect with the same call id continues it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from actors.outbound import ExchangeResult
from gateway import metrics
from gateway.links import CallLink, LinkError
from iasovoice import protocol
from iasovoice.audio.pcm import array_to_pcm16, frame_samples
from iasovoice.audio.resample import resample
from iasovoice.config import AppConfig
from iasovoice.errors import ProtocolError

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PENDING_S = 30.0  # caller audio buffered between exchanges before the oldest is dropped
# Claims the call again after its actor's link broke: the (new) actor, a link to it, its next frame number.
Recover = Callable[[], Awaitable[tuple[ActorHandle, CallLink, int]]]


@dataclass
class RelayOptions:
    call_id: str
    sample_rate: int
    events: frozenset[str] = frozenset()
    interval_s: float = 0.04
    actor_timeout_s: float = 10.0
    max_message_bytes: int = 2 * 1024 * 1024
    send_timeout_s: float = 5.0
    max_recoveries: int = 3

    @classmethod
    def from_config(cls, config: AppConfig, call_id: str, sample_rate: int, events: frozenset[str]) -> RelayOptions:
        server = config.server
        return cls(
            call_id, sample_rate, events, server.relay_interval_ms / 1000.0, server.actor_call_timeout_s,
            server.max_message_bytes, server.send_timeout_s, config.call.max_recoveries,
        )


@dataclass
class _Inbound:
    """Caller audio waiting for the next exchange: whole frames plus a sub-frame remainder."""

    frame_len: int
    next_seq: int = 0
    chunks: list[np.ndarray] = field(default_factory=list)
    buffered: int = 0
    dropped_frames: int = 0

    def add(self, samples: np.ndarray, max_samples: int) -> None:
        self.chunks.append(samples)
        self.buffered += len(samples)
        excess = self.buffered - max_samples
        if excess > 0:
            # Overloaded: drop the oldest whole frames but keep numbering, so the actor sees the gap.
            drop = np.concatenate(self.chunks)
            drop_frames = -(-excess // self.frame_len)
            self.chunks = [drop[drop_frames * self.frame_len:]]
            self.buffered = len(self.chunks[0])
            self.next_seq += drop_frames
            self.dropped_frames += drop_frames

    def take_frames(self) -> tuple[int, bytes]:
        if self.buffered < self.frame_len:
            return self.next_seq, b""
        audio = np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        whole = (len(audio) // self.frame_len) * self.frame_len
        first = self.next_seq
        self.next_seq += whole // self.frame_len
        rest = audio[whole:]
        self.chunks = [rest] if len(rest) else []
        self.buffered = len(rest)
        return first, array_to_pcm16(audio[:whole])

    def take_all(self) -> tuple[int, bytes]:
        """At hang-up the last partial frame is padded with silence rather than lost."""
        pad = (-self.buffered) % self.frame_len
        if pad:
            self.add(np.zeros(pad, dtype=np.int16), max_samples=1 << 62)
        return self.take_frames()


class CallRelay:
    def __init__(self, websocket: ServerConnection, options: RelayOptions, recover: Recover | None = None) -> None:
        self._ws = websocket
        self._opt = options
        self._recover = recover
        self.recoveries = 0
        self._dropped = False  # we cut a stalled caller off: a lost connection, not a hang-up
        self._actor: ActorHandle | None = None
        self._link: CallLink | None = None
        self._inbound = _Inbound(frame_samples(options.sample_rate))
        self._max_pending = int(MAX_PENDING_S * options.sample_rate)
        self._pending_dtmf: list[str] = []
        self._caller_done = asyncio.Event()
        self._wake: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopped_by_message = False
        self._ended: str | None = None
        self.frames_in = 0
        self.frames_out = 0

    async def start_reading(self, first_messages: list[protocol.ClientMessage]) -> None:
        """Take the messages read before the relay existed and keep reading from now on."""
        for message in first_messages:
            if not await self._on_message(message):
                self._caller_stopped()
                return
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def attach(self, actor: ActorHandle, link: CallLink, next_seq: int) -> None:
        """The claimed call actor: frames read so far are numbered from where it expects them."""
        self._actor = actor
        self._link = link
        self._inbound.next_seq = next_seq
        for digits in self._pending_dtmf:
            actor.dtmf.remote(digits)
        self._pending_dtmf.clear()

    async def close(self) -> None:
        """Stop reading (after `run`, or when the claim failed and `run` never started)."""
        if self._reader is not None:
            self._reader.cancel()
        if self._link is not None:
            await self._link.close()

    async def run(self) -> str:
        """Relay until the call ends; returns why it ended. `start_reading` and `attach` come first."""
        try:
            await self._pump()
        finally:
            await self.close()
        return self._ended or "caller_hangup"

    # ----------------------------------------------------------------------------------- inbound
    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    message = protocol.parse_client_message(raw, max_audio_bytes=self._opt.max_message_bytes)
                except ProtocolError as error:
                    await self._reject(error)
                    if error.fatal:
                        break
                    continue
                if not await self._on_message(message):
                    break
        except ConnectionClosed as closed:
            count_if_oversize(closed)
        finally:
            self._caller_stopped()

    def _caller_stopped(self) -> None:
        self._caller_done.set()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)  # the pump hangs up now, not at its next tick

    async def _on_message(self, message: protocol.ClientMessage) -> bool:
        """Apply one parsed message; False when the caller asked to stop."""
        if isinstance(message, protocol.AudioMessage):
            samples = message.samples
            if message.sample_rate != self._opt.sample_rate:
                # A client that changes rate mid-call: convert rather than lose its audio.
                samples = resample(samples, message.sample_rate, self._opt.sample_rate)
            self._inbound.add(samples, self._max_pending)
            return True
        if isinstance(message, protocol.StopMessage):
            self._stopped_by_message = True
            return False
        if isinstance(message, protocol.DtmfMessage):
            if self._actor is None:
                self._pending_dtmf.append(message.digits)
            else:
                self._actor.dtmf.remote(message.digits)
        return True

    async def _reject(self, error: ProtocolError) -> None:
        log.info("call %s: rejected a message: %s", self._opt.call_id, error)
        metrics.count_bad_message(error.kind)
        try:
            await self._ws.send(protocol.error_message("bad_message", str(error)))
            if error.fatal:
                await self._ws.close(error.close_code, protocol.close_reason(str(error)))
        except ConnectionClosed:
            pass

    # ---------------------------------------------------------------------------------- exchange
    async def _pump(self) -> None:
        self._require_actor()
        interval = self._opt.interval_s
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        hung_up = False
        while True:
            if self._caller_done.is_set() and not hung_up:
                first, pcm = self._inbound.take_all()
                await self._exchange(first, pcm)
                actor = self._require_actor()
                if self._connection_dropped():
                    await self._call_actor(actor.connection_lost.remote())
                    return  # the call waits for a reconnect (call.reconnect_grace_s), then ends itself
                await self._call_actor(actor.hangup.remote("stop" if self._stopped_by_message else "caller_hangup"))
                hung_up = True
                if not self._stopped_by_message:
                    return  # the socket is gone; the actor finishes the note on its own
            else:
                first, pcm = self._inbound.take_frames()
                await self._exchange(first, pcm)
            if self._ended is not None:
                await self._close_normally()
                return
            next_tick += interval
            delay = next_tick - loop.time()
            if delay < -interval:  # fell behind (overload): do not burst to catch up
                next_tick = loop.time()
                delay = 0.0
            await self._sleep(delay, wake_on_hangup=not hung_up)

    async def _sleep(self, delay: float, wake_on_hangup: bool) -> None:
        """Sleep until the next tick, or until the caller hangs up (then the pump reacts at once).

        One future and one timer per tick: `asyncio.wait_for` would also make a Task per tick, and
        the pump of every call ticks 25 times a second.
        """
        if delay <= 0 or (wake_on_hangup and self._caller_done.is_set()):
            return
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(delay, _resolve, wake)
        self._wake = wake if wake_on_hangup else None
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _connection_dropped(self) -> bool:
        """The caller's side vanished (no close frame either way, or we cut a stalled socket): not a hang-up.

        websockets also reports 1006 when the gateway itself failed the connection (a frame over
        `max_size`, invalid UTF-8): it sent a close frame then, and that is a refusal, not a drop.
        """
        if self._stopped_by_message:
            return False
        protocol_state = self._ws.protocol
        return self._dropped or (protocol_state.close_rcvd is None and protocol_state.close_sent is None)

    def _require_actor(self) -> ActorHandle:
        if self._actor is None or self._link is None:
            raise RuntimeError("relay.attach() must come before run()")
        return self._actor

    async def _call_actor(self, awaitable: Awaitable[T]) -> T:
        async with asyncio.timeout(self._opt.actor_timeout_s):
            return await awaitable

    async def _exchange(self, first_seq: int, pcm: bytes) -> None:
        assert self._link is not None
        if pcm:
            self.frames_in += len(pcm) // (2 * self._inbound.frame_len)
        try:
            result: ExchangeResult = await self._call_actor(self._link.exchange(first_seq, pcm))
        except (LinkError, RayActorError) as error:
            await self._recover_link(error)
            return  # the frames of the failed exchange are lost; those read since go to the new actor
        await self._send(result)

    async def _recover_link(self, error: Exception) -> None:
        """The call actor is gone: claim the call again (resumed on a new actor) and go on on this socket."""
        if self._recover is None or self.recoveries >= self._opt.max_recoveries:
            raise error
        self.recoveries += 1
        log.warning("call %s: link to the call actor broke (%s); resuming the call (attempt %d)",
                    self._opt.call_id, type(error).__name__, self.recoveries)
        assert self._link is not None
        await self._link.close()
        actor, link, next_seq = await self._call_actor(self._recover())
        self.attach(actor, link, next_seq)

    async def _send(self, result: ExchangeResult) -> None:
        messages: list[str] = []
        for item in result.items:
            if item.kind == "audio":
                messages.append(protocol.audio_message(item.audio))
                self.frames_out += 1
            elif item.kind == "clear":
                messages.append(protocol.clear_message())
            elif item.kind == "transfer":
                messages.append(protocol.transfer_message(item.data["kind"], item.data["target"]))
            elif item.kind == "transcript" and "transcript" in self._opt.events:
                d = item.data
                messages.append(protocol.transcript_message(d["role"], d["text"], d["utterance_id"]))
            elif item.kind == "note_ready" and "note_ready" in self._opt.events:
                call_id = item.data["call_id"]
                messages.append(protocol.note_ready_message(call_id, f"/calls/{call_id}/note"))
            elif item.kind == "ended":
                self._ended = item.data.get("reason", "ended")
                if "ended" in self._opt.events:
                    messages.append(protocol.call_ended_message(self._ended))
        if not messages:
            return
        try:
            async with asyncio.timeout(self._opt.send_timeout_s):
                for message in messages:
                    await self._ws.send(message)
        except ConnectionClosed:
            self._caller_stopped()
        except TimeoutError:
            # A caller that does not read must not hold this call's pump (or its audio) forever.
            log.warning("call %s: caller socket stalled for %.1f s; dropping it", self._opt.call_id,
                        self._opt.send_timeout_s)
            self._dropped = True
            self._ws.transport.abort()
            self._caller_stopped()

    async def _close_normally(self) -> None:
        try:
            await self._ws.close(1000, "call ended")
        except ConnectionClosed:
            pass


def count_if_oversize(closed: ConnectionClosed) -> None:
    """websockets closes a frame over `max_size` itself (1009); count it as a bad message too."""
    if closed.sent is not None and closed.sent.code == protocol.CLOSE_TOO_BIG:
        metrics.count_bad_message("too_large")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
