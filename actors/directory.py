"""CallDirectory: the warm pool of call actors and the map from call id to the actor serving it.

Starting a Ray actor costs a worker process (0.3–0.9 s here), far too long for a ringing phone, so
`pool_size` actors are started ahead with their VAD loaded. When a call arrives one is taken from the
pool, bound to the call id, and a replacement is started in the background. The gateway asks the
directory only when a socket opens; audio then flows straight to the call actor.

Ray names an actor when it is created, before any call id is known, so the directory is the name
service: `lookup(call_id)` is the equivalent of `ray.get_actor(name)` for a call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.outbound import Binding
from iasovoice.config import AppConfig
from iasovoice.errors import AtCapacityError
from iasovoice.storage.base import validate_call_id

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class CallDirectory:
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        self._pool: list[ActorHandle] = []
        self._calls: dict[str, ActorHandle] = {}
        self._binding: dict[str, asyncio.Future[ActorHandle]] = {}
        self._starting = 0
        self._cold_starts = 0
        self._total_calls = 0
        self._refused = 0
        # Refills start their actors a few at a time; a claim that finds the pool empty does not wait here.
        self._refill_gate = asyncio.Semaphore(config.call.pool_refill_concurrency)

    async def warm(self) -> int:
        """Fill the pool and wait until every actor in it is ready; returns the pool size."""
        await self._refill()
        return len(self._pool)

    async def claim(
        self, call_id: str, sample_rate: int, attributes: dict[str, str] | None = None
    ) -> tuple[ActorHandle, Binding]:
        """The call's actor (bound on first claim, the same one on a reconnect) and where its audio goes."""
        validate_call_id(call_id)
        if call_id in self._calls:
            actor = self._calls[call_id]
            return actor, await actor.bind.remote(call_id, sample_rate, attributes)
        if call_id in self._binding:  # a second socket for a call that is being set up right now
            actor = await asyncio.shield(self._binding[call_id])
            return actor, await actor.bind.remote(call_id, sample_rate, attributes)
        limit = self._config.call.max_active_calls
        if limit is not None and len(self._calls) + len(self._binding) >= limit:
            self._refused += 1
            raise AtCapacityError(f"{limit} calls already active (call.max_active_calls)")
        future: asyncio.Future[ActorHandle] = asyncio.get_running_loop().create_future()
        self._binding[call_id] = future
        try:
            actor = await self._take_actor()
            binding = await actor.bind.remote(call_id, sample_rate, attributes)
            self._calls[call_id] = actor
            self._total_calls += 1
            future.set_result(actor)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved so an unawaited future does not warn
            raise
        finally:
            del self._binding[call_id]
        asyncio.get_running_loop().create_task(self._refill())
        return actor, binding

    async def lookup(self, call_id: str) -> ActorHandle | None:
        return self._calls.get(call_id)

    async def release(self, call_id: str) -> None:
        """The call is over and its records are written: let its process go after a short grace."""
        actor = self._calls.pop(call_id, None)
        if actor is None:
            return
        await asyncio.sleep(self._config.call.release_grace_s)
        ray.kill(actor, no_restart=True)

    async def stats(self) -> dict[str, Any]:
        return {
            "warm": len(self._pool),
            "active": len(self._calls),
            "starting": self._starting,
            "cold_starts": self._cold_starts,
            "total_calls": self._total_calls,
            "refused_at_capacity": self._refused,
        }

    async def _take_actor(self) -> ActorHandle:
        if self._pool:
            return self._pool.pop()
        self._cold_starts += 1
        log.warning("warm pool empty: starting a call actor on demand (raise call.pool_size)")
        self._starting += 1
        return await self._start_actor()

    async def _start_actor(self) -> ActorHandle:
        """Start one actor; the caller has already counted it in `_starting` (see `_refill`)."""
        from actors.call_actor import CallActor

        started = time.perf_counter()
        try:
            actor = CallActor.remote(self._config)
            await actor.ready.remote()
        finally:
            self._starting -= 1
        log.debug("call actor started in %.2f s", time.perf_counter() - started)
        return actor

    async def _start_gated(self) -> ActorHandle:
        async with self._refill_gate:
            return await self._start_actor()

    async def _refill(self) -> None:
        """Top the pool up to pool_size, never above it (each idle actor is a whole process).

        The starts are counted before the first await: every claim schedules a refill, and refills that
        ran before the counted starts were visible each topped the pool up again (50 claims at once
        started ~100 surplus processes). And they run `call.pool_refill_concurrency` at a time: a new
        Ray worker costs ~1 s of CPU, and 50 at once on 2 cores stalled the live calls' exchanges past
        the gateway's timeout, which then closed those calls (bench 1, docs/performance.md).
        """
        missing = self._config.call.pool_size - len(self._pool) - self._starting
        if missing <= 0:
            return
        self._starting += missing
        actors = await asyncio.gather(*(self._start_gated() for _ in range(missing)), return_exceptions=True)
        for actor in actors:
            if isinstance(actor, BaseException):
                log.error("could not start a warm call actor: %s", actor)
            else:
                self._pool.append(actor)
