"""The gateway server: websocket `/connect/{call_id}` plus HTTP `GET /calls/{call_id}/note` on one port.

It maps each socket to its call actor through the directory and relays; everything about the call
lives in the actor, so a gateway can restart (or a second one can serve the same cluster) without
losing a call. Bad input is answered with a clear error and a clean close, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from http import HTTPStatus
from typing import Any

from ray.actor import ActorHandle
from ray.exceptions import RayError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.auth import verify_call_token
from gateway.links import LinkError, open_link
from gateway.relay import CallRelay, RelayOptions
from gateway.routes import Route, route, valid_call_id
from iasovoice import protocol
from iasovoice.config import AppConfig
from iasovoice.errors import AtCapacityError, ProtocolError

log = logging.getLogger(__name__)
BIND_WAIT_S = 0.5  # how long to wait for the first audio message to learn the caller's sample rate
KNOWN_EVENTS = frozenset({"transcript", "note_ready", "ended"})


def _json_response(status: HTTPStatus, body: dict[str, Any] | bytes) -> Response:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return Response(status.value, status.phrase, headers, payload)


class Gateway:
    def __init__(self, config: AppConfig, directory: ActorHandle, storage: ActorHandle, metrics: ActorHandle) -> None:
        self._config = config
        self._directory = directory
        self._storage = storage
        self._metrics = metrics
        self._secret = self._load_secret()
        self._server: Server | None = None
        self.active_connections = 0

    def _load_secret(self) -> bytes | None:
        env = self._config.server.auth_secret_env
        if not env:
            return None
        value = os.environ.get(env)
        if not value:
            raise RuntimeError(f"server.auth_secret_env names ${env}, but it is not set")
        return value.encode()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        server = self._config.server
        self._server = await serve(
            self._handle,
            host or server.host,
            server.port if port is None else port,
            process_request=self._process_request,
            max_size=server.max_message_bytes,
            # The relay reads while the directory claims a call actor (relay.py), so the queue only
            # needs to absorb a loaded event loop's hiccups: 64 frames are 1.3 s of 20 ms audio.
            max_queue=64,
            compression=None,  # audio does not deflate; compressing it would only cost CPU per frame
            ping_interval=20,
            ping_timeout=20,
            server_header="IasoVoice",
        )
        log.info("gateway listening on ws://%s:%d/connect/{call_id}", host or server.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------------------------------- HTTP side
    def _authorized(self, call_id: str, query: dict[str, str] | None) -> bool:
        return self._secret is None or verify_call_token(self._secret, call_id, (query or {}).get("token"))

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        target = route(request.path)
        if target.kind == "connect":
            if not valid_call_id(target.call_id or ""):
                return _json_response(HTTPStatus.BAD_REQUEST, {"error": "invalid call id"})
            if not self._authorized(target.call_id or "", target.query):
                return _json_response(HTTPStatus.UNAUTHORIZED, {"error": "missing or invalid token for this call"})
            return None  # go on with the websocket handshake
        if target.kind == "health":
            stats = await self._directory.stats.remote()
            return _json_response(HTTPStatus.OK, {"status": "ok", "connections": self.active_connections, **stats})
        if target.kind == "record":
            return await self._record_response(target)
        return _json_response(HTTPStatus.NOT_FOUND, {"error": "unknown path; websocket calls use /connect/{call_id}"})

    async def _record_response(self, target: Route) -> Response:
        call_id = target.call_id or ""
        if not valid_call_id(call_id):
            return _json_response(HTTPStatus.BAD_REQUEST, {"error": "invalid call id"})
        if not self._authorized(call_id, target.query):
            return _json_response(HTTPStatus.UNAUTHORIZED, {"error": "missing or invalid token for this call"})
        try:
            data = await self._storage.get.remote(call_id, target.record)
        except RayError as error:
            log.error("reading %s for call %s failed: %s", target.record, call_id, type(error).__name__)
            return _json_response(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "storage unavailable"})
        if data is None:
            return _json_response(HTTPStatus.NOT_FOUND, {"error": f"no {target.record} for call {call_id} (yet)"})
        return _json_response(HTTPStatus.OK, data)

    # -------------------------------------------------------------------------------- websocket side
    async def _handle(self, websocket: ServerConnection) -> None:
        target = route(websocket.request.path if websocket.request else "/")
        call_id = target.call_id or ""
        query = target.query or {}
        events = frozenset(e for e in query.get("events", "").split(",") if e in KNOWN_EVENTS)
        self.active_connections += 1
        self._metrics.record.remote("WebSocketConnections", self.active_connections, "Count")
        try:
            first, sample_rate = await self._first_messages(websocket, query)
            if first is None:
                return
            relay = CallRelay(websocket, RelayOptions.from_config(self._config.server, call_id, sample_rate, events))
            await relay.start_reading(first)  # before the claim, which may take seconds (see relay.py)
            try:
                actor, binding = await self._directory.claim.remote(call_id, sample_rate, {})
                relay.attach(actor, await open_link(actor, binding), binding.next_seq)
            except BaseException:
                await relay.close()
                raise
            reason = await relay.run()
            log.info("call %s: socket done (%s), %d frames in, %d out", call_id, reason, relay.frames_in, relay.frames_out)
        except AtCapacityError as error:
            log.warning("call %s refused: %s", call_id, error)
            self._metrics.record.remote("CallsRefused", 1, "Count")
            await self._close(websocket, 1013, "at capacity; try again later")
        except (RayError, TimeoutError, LinkError) as error:
            log.error("call %s: call actor unavailable: %s", call_id, type(error).__name__)
            self._metrics.record.remote("WebSocketFailures", 1, "Count")
            await self._close(websocket, 1011, "call service unavailable")
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("call %s: gateway error", call_id)
            self._metrics.record.remote("WebSocketFailures", 1, "Count")
            await self._close(websocket, 1011, "internal error")
        finally:
            self.active_connections -= 1

    async def _first_messages(
        self, websocket: ServerConnection, query: dict[str, str]
    ) -> tuple[list[protocol.ClientMessage] | None, int]:
        """Wait briefly for the first audio message: its metadata fixes the call's sample rate.

        Amazon Connect streams audio from the first moment, so this costs nothing there; a client that
        sends nothing gets the rate from `?sampleRate=` (default 8000) and still hears the greeting.
        """
        try:
            default_rate = int(query.get("sampleRate", protocol.DEFAULT_SAMPLE_RATE))
        except ValueError:
            default_rate = -1
        if default_rate not in (8000, 16000):
            await self._close(websocket, 1003, "sampleRate must be 8000 or 16000")
            return None, 0
        messages: list[protocol.ClientMessage] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BIND_WAIT_S
        while not any(isinstance(m, protocol.AudioMessage) for m in messages):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                raw = await asyncio.wait_for(websocket.recv(), remaining)
            except TimeoutError:
                break
            except ConnectionClosed:
                # A caller that sent audio and hung up at once still gets that audio transcribed.
                break
            try:
                messages.append(
                    protocol.parse_client_message(raw, max_audio_bytes=self._config.server.max_message_bytes)
                )
            except ProtocolError as error:
                await websocket.send(protocol.error_message("bad_message", str(error)))
                if error.fatal:
                    await self._close(websocket, error.close_code, str(error)[:120])
                    return None, 0
        audio = next((m for m in messages if isinstance(m, protocol.AudioMessage)), None)
        return messages, audio.sample_rate if audio else default_rate

    @staticmethod
    async def _close(websocket: ServerConnection, code: int, reason: str) -> None:
        try:
            await websocket.close(code, reason)
        except ConnectionClosed:
            pass
