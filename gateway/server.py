"""The gateway server: websocket `/connect/{call_id}` plus HTTP `GET /calls/{call_id}/note` on one port.

It maps each socket to its call actor through the directory and relays; everything about the call
lives in the actor, so a gateway can restart (or a second one can serve the same cluster) without
losing a call. Bad input is answered with a clear error and a clean close, never a crash.

A bad call id is refused before the handshake (HTTP 400); a bad token after it, with close code 1008
and the reason in words, because browsers and most websocket clients never show a refused handshake's
body, while a close reason reaches every client. The same port serves `/healthz`, `/readyz` and the
Prometheus `/metrics` (gateway/metrics.py).
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

from gateway import metrics
from gateway.auth import TokenRejected, TokenVerifier, token_from_request
from gateway.links import LinkError, open_link
from gateway.relay import CallRelay, RelayOptions, count_if_oversize
from gateway.routes import Route, call_id_problem, route
from iasovoice import protocol
from iasovoice.config import AppConfig
from iasovoice.errors import AtCapacityError, ProtocolError

log = logging.getLogger(__name__)
BIND_WAIT_S = 0.5  # how long to wait for the first audio message to learn the caller's sample rate
KNOWN_EVENTS = frozenset({"transcript", "note_ready", "ended"})


CLOSE_POLICY = 1008  # RFC 6455 "policy violation": the token does not open this call


def _json_response(status: HTTPStatus, body: dict[str, Any] | bytes) -> Response:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return Response(status.value, status.phrase, headers, payload)


def _metrics_response() -> Response:
    payload, content_type = metrics.exposition()
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(payload)))])
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, payload)


class Gateway:
    def __init__(self, config: AppConfig, directory: ActorHandle, storage: ActorHandle, metrics: ActorHandle) -> None:
        self._config = config
        self._directory = directory
        self._storage = storage
        self._metrics = metrics
        # Key material is loaded now, so a missing secret or key file stops `serve` before it listens.
        self._verifier = TokenVerifier(config.server.auth, os.environ)
        self._server: Server | None = None
        self.active_connections = 0
        # The gateway is built after Runtime.start() has loaded the models, so it is ready once it
        # listens; it stops being ready as soon as shutdown begins (a balancer drains it first).
        self.ready = False

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
        self._warn_about_auth(host or server.host)
        self.ready = True

    def _warn_about_auth(self, host: str) -> None:
        server = self._config.server
        if server.auth_secret_env:
            log.warning(
                "server.auth_secret_env is deprecated: it now means server.auth.mode: jwt-hs256 with "
                "server.auth.secret_env: %s (tokens are JWTs); move it to server.auth", server.auth_secret_env,
            )
        if not self._verifier.enabled:
            log.warning(
                "!!! AUTHENTICATION IS OFF (server.auth.mode: off, allow_unauthenticated: true): anyone who can "
                "reach %s:%d can open calls and read SOAP notes and transcripts. Loopback demos only; set "
                "server.auth.mode to jwt-hs256 or jwt-rs256 anywhere else. !!!", host, self.port,
            )

    def mark_draining(self) -> None:
        """Shutdown has begun: `/readyz` answers 503 from now on."""
        self.ready = False

    async def stop(self) -> None:
        self.mark_draining()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------------------------------- HTTP side
    def _check_token(self, call_id: str, headers: Headers | None, query: dict[str, str] | None) -> TokenRejected | None:
        """None when the request's token opens `call_id`; else the refusal, already counted and logged."""
        try:
            self._verifier.verify(call_id, token_from_request(headers, query))
        except TokenRejected as rejected:
            metrics.count_auth_rejection(rejected.reason)
            log.warning("call %s: token refused (%s)", call_id, rejected.reason)  # never the token itself
            return rejected
        except Exception:  # a bug in checking must refuse (fail closed), never answer 500 or let the call in
            log.exception("call %s: token check failed; refusing", call_id)
            metrics.count_auth_rejection("invalid")
            return TokenRejected("invalid")
        return None

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        target = route(request.path)
        if target.kind == "connect":
            problem = call_id_problem(target.call_id)
            if problem is not None:
                return _json_response(HTTPStatus.BAD_REQUEST, {"error": problem})
            return None  # the handshake goes on; the token is checked right after it (close 1008)
        if target.kind == "health":
            stats = await self._directory.stats.remote()
            return _json_response(HTTPStatus.OK, {"status": "ok", "connections": self.active_connections, **stats})
        if target.kind == "ready":
            if self.ready:
                return _json_response(HTTPStatus.OK, {"status": "ready"})
            return _json_response(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "not ready"})
        if target.kind == "metrics":
            return _metrics_response()
        if target.kind == "record":
            return await self._record_response(target, request.headers)
        return _json_response(HTTPStatus.NOT_FOUND, {"error": "unknown path; websocket calls use /connect/{call_id}"})

    async def _record_response(self, target: Route, headers: Headers) -> Response:
        call_id = target.call_id or ""
        problem = call_id_problem(call_id)
        if problem is not None:
            return _json_response(HTTPStatus.BAD_REQUEST, {"error": problem})
        rejected = self._check_token(call_id, headers, target.query)
        if rejected is not None:
            return _json_response(HTTPStatus.UNAUTHORIZED, {"error": rejected.message, "reason": rejected.reason})
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
        request = websocket.request
        target = route(request.path if request else "/")
        call_id = target.call_id or ""
        query = target.query or {}
        rejected = self._check_token(call_id, request.headers if request else None, query)
        if rejected is not None:
            await self._close(websocket, CLOSE_POLICY, rejected.message)
            return
        events = frozenset(e for e in query.get("events", "").split(",") if e in KNOWN_EVENTS)
        self.active_connections += 1
        metrics.WEBSOCKET_CONNECTIONS.inc()
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
            metrics.WEBSOCKET_CONNECTIONS.dec()

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
            except ConnectionClosed as closed:
                # A caller that sent audio and hung up at once still gets that audio transcribed.
                count_if_oversize(closed)
                break
            try:
                messages.append(
                    protocol.parse_client_message(raw, max_audio_bytes=self._config.server.max_message_bytes)
                )
            except ProtocolError as error:
                metrics.count_bad_message(error.kind)
                await websocket.send(protocol.error_message("bad_message", str(error)))
                if error.fatal:
                    await self._close(websocket, error.close_code, protocol.close_reason(str(error)))
                    return None, 0
        audio = next((m for m in messages if isinstance(m, protocol.AudioMessage)), None)
        return messages, audio.sample_rate if audio else default_rate

    @staticmethod
    async def _close(websocket: ServerConnection, code: int, reason: str) -> None:
        try:
            await websocket.close(code, reason)
        except ConnectionClosed:
            pass
