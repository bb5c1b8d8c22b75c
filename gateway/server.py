"""The gateway server: websocket `/connect/{call_id}` plus HTTP `GET /calls/{call_id}/note` on one port.

It maps each socket to its call actor through the directory and relays; everything about the call
lives in the actor, so a gateway can restart (or a second one can serve the same cluster) without
losing a call. Bad input is answered with a clear error and a clean close, never a crash.

A bad call id is refused before the handshake (HTTP 400); a bad token after it, with close code 1008
and the reason in words, because browsers and most websocket clients never show a refused handshake's
body, while a close reason reaches every client. The same port serves `/healthz`, `/readyz` and the
Prometheus `/metrics` (gateway/metrics.py). Every read of a note or transcript, served or refused, is
written to the append-only audit log (iasovoice/audit.py) before it is answered.
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
from gateway.auth import TokenRejected, TokenVerifier, call_attributes, token_from_request
from gateway.links import CallLink, LinkError, open_link
from gateway.relay import CallRelay, RelayOptions, count_if_oversize
from gateway.routes import Route, call_id_problem, route
from iasovoice import protocol
from iasovoice.audit import AuditError, AuditLog, Outcome, forwarded_for
from iasovoice.config import AppConfig, resolve_path
from iasovoice.errors import AtCapacityError, ConfigError, ProtocolError, ShuttingDownError

log = logging.getLogger(__name__)
BIND_WAIT_S = 0.5  # how long to wait for the first audio message to learn the caller's sample rate
KNOWN_EVENTS = frozenset({"transcript", "note_ready", "ended"})
METRICS_SNAPSHOT_TIMEOUT_S = 1.0  # a scrape waits this long for the metrics actor, then goes without it


CLOSE_POLICY = 1008  # RFC 6455 "policy violation": the token does not open this call


def _json_response(status: HTTPStatus, body: dict[str, Any] | bytes) -> Response:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return Response(status.value, status.phrase, headers, payload)


async def _metrics_response(metrics_actor: ActorHandle) -> Response:
    """The scrape: the gateway's own metrics plus the call actors' series, fetched from the metrics actor.

    Those series live in the metrics actor (gateway/metrics.py says why); if it is slow or gone the
    scrape still answers, without them, so monitoring never loses the gateway's own metrics.
    """
    try:
        fed = await asyncio.wait_for(metrics_actor.series_snapshot.remote(), METRICS_SNAPSHOT_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - metrics must answer whatever the actor does (fail open)
        log.warning("/metrics: the metrics actor did not answer (%s); serving the gateway's metrics only",
                    type(error).__name__)
        fed = None
    payload, content_type = metrics.exposition(fed)
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
        try:  # likewise an unwritable audit log: PHI is never served without its record of who read it
            self._audit = AuditLog(resolve_path(config.audit.path))
        except AuditError as error:
            raise ConfigError(str(error)) from None
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

    async def wait_for_sockets(self, timeout_s: float) -> None:
        """Let relays deliver their calls' last events (`call_ended`, `note_ready`) before the port closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.active_connections and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.mark_draining()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ------------------------------------------------------------------------------------- HTTP side
    def _check_token(
        self, call_id: str, headers: Headers | None, query: dict[str, str] | None, claims: dict[str, Any] | None = None
    ) -> TokenRejected | None:
        """None when the request's token opens `call_id`; else the refusal, already counted and logged.

        `claims`, when given, receives the verified token's claims (nothing with auth off): the audit
        log names the reader from them. Unverified claims never reach it.
        """
        try:
            verified = self._verifier.verify(call_id, token_from_request(headers, query))
        except TokenRejected as rejected:
            metrics.count_auth_rejection(rejected.reason)
            log.warning("call %s: token refused (%s)", call_id, rejected.reason)  # never the token itself
            return rejected
        except Exception:  # a bug in checking must refuse (fail closed), never answer 500 or let the call in
            log.exception("call %s: token check failed; refusing", call_id)
            metrics.count_auth_rejection("invalid")
            return TokenRejected("invalid")
        if claims is not None:
            claims.update(verified)
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
            return await _metrics_response(self._metrics)
        if target.kind == "record":
            return await self._record_response(target, request.headers, connection.remote_address)
        return _json_response(HTTPStatus.NOT_FOUND, {"error": "unknown path; websocket calls use /connect/{call_id}"})

    async def _record_response(self, target: Route, headers: Headers, peer: Any = None) -> Response:
        """A note or transcript, to the holder of the call's token; each outcome is audited first.

        A served record is answered only once its audit entry is on disk (else 503): PHI never leaves
        without a record of who read it. The other outcomes are answered even if the audit write fails.
        """
        call_id = target.call_id or ""
        record = target.record or "note"
        problem = call_id_problem(call_id)
        audited_id = None if problem is not None else call_id  # a bad id is not logged: a client typed it
        claims: dict[str, Any] = {}

        async def audit(outcome: Outcome, who: dict[str, Any] | None, reason: str | None = None) -> bool:
            try:
                await self._audit.append_async(
                    action="read", record=record, call_id=audited_id, outcome=outcome, claims=who, reason=reason,
                    client=peer[0] if isinstance(peer, tuple) and peer else None,
                    forwarded=forwarded_for(headers.get("X-Forwarded-For")),
                )
            except (AuditError, ValueError) as error:
                log.error("call %s: audit entry for a %s read not written: %s", call_id, record, error)
                return False
            return True

        if problem is not None:
            await audit("refused", None, "bad_call_id")
            return _json_response(HTTPStatus.BAD_REQUEST, {"error": problem})
        rejected = self._check_token(call_id, headers, target.query, claims)
        if rejected is not None:
            await audit("refused", None, rejected.reason)
            return _json_response(HTTPStatus.UNAUTHORIZED, {"error": rejected.message, "reason": rejected.reason})
        try:
            data = await self._storage.get.remote(call_id, target.record)
        except RayError as error:
            log.error("reading %s for call %s failed: %s", target.record, call_id, type(error).__name__)
            await audit("error", claims, "storage_unavailable")
            return _json_response(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "storage unavailable"})
        if data is None:
            await audit("not_found", claims)
            return _json_response(HTTPStatus.NOT_FOUND, {"error": f"no {target.record} for call {call_id} (yet)"})
        if not await audit("served", claims):
            return _json_response(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "audit log unavailable"})
        return _json_response(HTTPStatus.OK, data)

    # -------------------------------------------------------------------------------- websocket side
    async def _handle(self, websocket: ServerConnection) -> None:
        request = websocket.request
        target = route(request.path if request else "/")
        call_id = target.call_id or ""
        query = target.query or {}
        claims: dict[str, Any] = {}
        rejected = self._check_token(call_id, request.headers if request else None, query, claims)
        if rejected is not None:
            await self._close(websocket, CLOSE_POLICY, rejected.message)
            return
        attributes = call_attributes(claims)  # checked with the token: the signed contact attributes
        events = frozenset(e for e in query.get("events", "").split(",") if e in KNOWN_EVENTS)
        self.active_connections += 1
        metrics.WEBSOCKET_CONNECTIONS.inc()
        self._metrics.record.remote("WebSocketConnections", self.active_connections, "Count")
        try:
            first, sample_rate = await self._first_messages(websocket, query)
            if first is None:
                return
            async def claim() -> tuple[ActorHandle, CallLink, int]:
                actor, binding = await self._directory.claim.remote(call_id, sample_rate, attributes)
                return actor, await open_link(actor, binding, self._config.server.stream_tls), binding.next_seq

            options = RelayOptions.from_config(self._config, call_id, sample_rate, events)
            relay = CallRelay(websocket, options, recover=claim)
            await relay.start_reading(first)  # before the claim, which may take seconds (see relay.py)
            try:
                relay.attach(*await claim())
            except BaseException:
                await relay.close()
                raise
            reason = await relay.run()
            log.info("call %s: socket done (%s), %d frames in, %d out, %d actor recoveries", call_id, reason,
                     relay.frames_in, relay.frames_out, relay.recoveries)
        except AtCapacityError as error:
            log.warning("call %s refused: %s", call_id, error)
            self._metrics.record.remote("CallsRefused", 1, "Count")
            await self._close(websocket, 1013, "at capacity; try again later")
        except ShuttingDownError:
            log.info("call %s refused: shutting down", call_id)
            await self._close(websocket, 1013, "server shutting down; try again later")
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
