"""The call actor's end of the direct stream (`server.transport: stream`).

With one Ray actor call per 40 ms exchange, 200 calls are 5,000 Ray calls a second, more than two cores
give (see docs/performance.md). So when a call is bound its actor opens a TCP listener (port 0) and hands
the address and a one-call token back through Ray; the gateway connects once and each exchange is then
one length-prefixed message each way on that socket, served on the actor's own event loop. Ray stays
the control plane (claim, bind, DTMF, hang-up) and the actor still owns all call state.

A stream that breaks without the gateway's bye (gateway crash, network split) is reported to the
actor at once, which hangs the call up cleanly so the transcript and note are still written.

The socket carries the caller's voice: with `server.stream_tls.mode: tls` it is mutual TLS (the
gateway must present a certificate from the stream's CA before its hello is even read), and the
hello token is still required on top, since TLS says "a node of this cluster", the token "the gateway
that was handed this call". Without TLS the listener is allowed only on loopback or, when the operator
stated it, a private address (`iasovoice/stream_tls.py`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from typing import Protocol

from actors import stream_codec as codec
from actors.outbound import ExchangeResult
from iasovoice.config import StreamTLSConfig
from iasovoice.stream_tls import server_context

log = logging.getLogger(__name__)
HELLO_TIMEOUT_S = 5.0


class StreamHandler(Protocol):
    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult: ...

    def stream_lost(self) -> None:
        """The gateway's stream broke without a bye."""
        ...


class StreamServer:
    """One listener per call: at most one authenticated gateway stream at a time (a new one replaces it)."""

    def __init__(self, handler: StreamHandler, host: str = "127.0.0.1", tls: StreamTLSConfig | None = None) -> None:
        """`tls`: the call's `server.stream_tls`; None (tests, benches) is plain TCP, on loopback only."""
        self._handler = handler
        self._host = host
        # Built (and refused) here, before anything listens: a bad cert file or a clear-text stream on
        # a public address fails the bind with the config key named.
        self._ssl = server_context(tls or StreamTLSConfig(), host)
        self.token = secrets.token_bytes(16)
        self._server: asyncio.Server | None = None
        self._current: asyncio.StreamWriter | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> tuple[str, int]:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, self._host, 0, limit=codec.MAX_MESSAGE_BYTES,
                ssl=self._ssl, ssl_handshake_timeout=HELLO_TIMEOUT_S if self._ssl else None,
            )
        return self.address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._current = None  # closing on purpose is not a lost gateway
        for writer in list(self._open):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        said_bye = False
        self._open.add(writer)
        try:
            hello = await asyncio.wait_for(codec.read_message(reader), HELLO_TIMEOUT_S)
            if hello[:1] != codec.HELLO or not hmac.compare_digest(hello[1:], self.token):
                log.warning("call stream: refused a connection without the call's token")
                return
            if self._current is not None:  # a reconnecting gateway takes over the call
                self._current.close()
            self._current = writer
            while True:
                payload = await codec.read_message(reader)
                kind = payload[:1]
                if kind == codec.EXCHANGE:
                    result = await self._handler.exchange(*codec.decode_exchange(payload))
                    writer.write(codec.encode_result(result))
                    await writer.drain()
                elif kind == codec.BYE:
                    said_bye = True
                    return
                else:
                    raise codec.StreamProtocolError(f"unexpected stream message {kind!r}")
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, OSError) as error:
            if not isinstance(error, asyncio.IncompleteReadError):
                log.info("call stream: %s", type(error).__name__)
        except Exception:
            log.exception("call stream: exchange failed")
        finally:
            self._open.discard(writer)
            if self._current is writer:
                self._current = None
                if not said_bye:
                    self._handler.stream_lost()
            writer.close()
