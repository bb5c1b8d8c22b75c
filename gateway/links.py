"""How the gateway's per-interval exchange reaches a call actor: the `CallLink` seam.

`RayLink` makes one Ray actor call per exchange; `StreamLink` uses the direct stream the actor opened
when bound (`actors/stream_server.py`). Both carry the same `ExchangeResult`, so the relay does not
know which one it has. `server.transport` picks; docs/performance.md has what each sustains.
With `server.stream_tls.mode: tls` the stream is mutual TLS (`iasovoice/stream_tls.py`): the gateway
checks the actor's certificate for `server.stream_tls.server_name`, since actors are reached by a node
IP that no certificate can name for long, and presents its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ray.actor import ActorHandle

from actors import stream_codec as codec
from actors.outbound import Binding, ExchangeResult
from iasovoice.config import StreamTLSConfig
from iasovoice.stream_tls import client_context

log = logging.getLogger(__name__)


class LinkError(ConnectionError):
    """The link to the call actor is gone; the call cannot go on over it."""


class CallLink(Protocol):
    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        """Caller frames from `first_seq` in; agent audio and events due out."""
        ...

    async def close(self) -> None:
        """Let go of the link on purpose (the actor does not treat this as a lost gateway)."""
        ...


class RayLink:
    def __init__(self, actor: ActorHandle) -> None:
        self._actor = actor

    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        return await self._actor.exchange.remote(first_seq, pcm)

    async def close(self) -> None:
        return None


class StreamLink:
    """One TCP stream to one call actor; exchanges are strictly one at a time, request then answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._broken = False

    @classmethod
    async def connect(
        cls, address: tuple[str, int], token: bytes, timeout_s: float = 5.0, tls: StreamTLSConfig | None = None
    ) -> StreamLink:
        """Connect and send the hello; `tls` is `server.stream_tls` (None or mode off: plain TCP).

        With TLS 1.3 a server that refuses our certificate says so only after the handshake, so that
        refusal shows up as a LinkError on the first exchange, like a refused token.
        """
        context = client_context(tls) if tls is not None else None
        host, port = address
        if context is not None and tls is not None:
            opening = asyncio.open_connection(
                host, port, limit=codec.MAX_MESSAGE_BYTES, ssl=context, server_hostname=tls.server_name
            )
        else:
            opening = asyncio.open_connection(host, port, limit=codec.MAX_MESSAGE_BYTES)
        try:
            reader, writer = await asyncio.wait_for(opening, timeout_s)
        except (OSError, TimeoutError) as error:  # ssl.SSLError (a certificate refused) is an OSError
            raise LinkError(f"cannot reach the call actor's stream: {type(error).__name__}") from None
        writer.write(codec.frame(codec.HELLO + token))
        return cls(reader, writer)

    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        if self._broken:
            raise LinkError("call stream already broken")
        try:
            self._writer.write(codec.encode_exchange(first_seq, pcm))
            await self._writer.drain()
            return codec.decode_result(await codec.read_message(self._reader))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as error:
            self._fail()
            raise LinkError(f"call stream broke: {type(error).__name__}") from None
        except BaseException:
            self._fail()  # cancelled or timed out half-way: the stream's framing can no longer be trusted
            raise

    async def close(self) -> None:
        if not self._broken:
            try:
                self._writer.write(codec.frame(codec.BYE))
                await self._writer.drain()
            except (ConnectionError, OSError):
                pass
        self._fail()

    def _fail(self) -> None:
        self._broken = True
        self._writer.close()


async def open_link(actor: ActorHandle, binding: Binding, tls: StreamTLSConfig) -> CallLink:
    """The link `bind()` asked for: a stream when the actor opened one (over `tls`), else Ray calls."""
    if binding.stream is not None and binding.token is not None:
        return await StreamLink.connect(binding.stream, binding.token, tls=tls)
    return RayLink(actor)
