"""CallDirectory: the warm pool of call actors and the map from call id to the actor serving it.

Starting a Ray actor costs a worker process (0.3–0.9 s here), far too long for a ringing phone, so
`pool_size` actors are started ahead with their VAD loaded. When a call arrives one is taken from the
pool, bound to the call id, and a replacement is started in the background. The gateway asks the
directory only when a socket opens; audio then flows straight to the call actor.

Ray names an actor when it is created, before any call id is known, so the directory is the name
service: `lookup(call_id)` is the equivalent of `ray.get_actor(name)` for a call.

A call outlives its actor. The directory watches each bound actor (a long `wait_ended` call that Ray
fails with `RayActorError` when the process dies), frees the dead actor's slot at once and remembers the
call as orphaned. A claim for that call id within `call.reconnect_grace_s` (the gateway re-claims as
soon as its link breaks) binds a warm actor with `resume=True`, which goes on from the state the dead
one checkpointed; if nobody claims it, the directory resumes it itself and hangs it up, so the note is
still written with every utterance stored before the crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError

from actors.outbound import Binding
from iasovoice.config import AppConfig
from iasovoice.errors import AtCapacityError, ShuttingDownError
from iasovoice.placement import actor_options
from iasovoice.storage.base import validate_call_id

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class CallDirectory:
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        self._call_actor_options = actor_options(config, "call_actor")
        self._pool: list[ActorHandle] = []
        self._calls: dict[str, ActorHandle] = {}
        self._binding: dict[str, asyncio.Future[ActorHandle]] = {}
        self._starting = 0
        self._cold_starts = 0
        self._total_calls = 0
        self._refused = 0
        self._deaths = 0
        self._resumed = 0
        # The sample rate and attributes each live call was claimed with (a resume needs them).
        self._meta: dict[str, tuple[int, dict[str, str]]] = {}
        # Calls whose actor died and that wait for a resume: call id -> monotonic time of death.
        self._orphans: dict[str, float] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._draining = False
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
            try:
                return actor, await actor.bind.remote(call_id, sample_rate, attributes)
            except RayActorError:
                self._on_death(call_id, actor)  # the gateway saw it first; resume below
        if call_id in self._binding:  # a second socket for a call that is being set up right now
            actor = await asyncio.shield(self._binding[call_id])
            return actor, await actor.bind.remote(call_id, sample_rate, attributes)
        resume = self._orphans.pop(call_id, None) is not None
        if self._draining and not resume:
            raise ShuttingDownError("the server is shutting down; new calls go to another node")
        limit = self._config.call.max_active_calls
        if not resume and limit is not None and len(self._calls) + len(self._binding) >= limit:
            self._refused += 1
            raise AtCapacityError(f"{limit} calls already active (call.max_active_calls)")
        future: asyncio.Future[ActorHandle] = asyncio.get_running_loop().create_future()
        self._binding[call_id] = future
        try:
            actor, binding = await self._bind_new(call_id, sample_rate, attributes, resume)
            self._calls[call_id] = actor
            self._meta[call_id] = (sample_rate, dict(attributes or {}))
            self._watch(call_id, actor)
            if resume:
                self._resumed += 1
            else:
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
        self._meta.pop(call_id, None)
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
            "actor_deaths": self._deaths,
            "calls_resumed": self._resumed,
            "orphaned": len(self._orphans),
        }

    async def drain(self, wait_calls_s: float) -> dict[str, int]:
        """Shutdown: take no new call, let live ones go on `wait_calls_s`, hang up the rest, and wait
        for every call's records (transcript and note) before answering, so no note is lost."""
        self._draining = True
        loop = asyncio.get_running_loop()
        live = len(self._calls) + len(self._orphans)
        deadline = loop.time() + wait_calls_s
        while self._calls and loop.time() < deadline:
            await asyncio.sleep(0.2)
        hung_up = list(self._calls.items())
        for _call_id, actor in hung_up:
            actor.hangup.remote("server_shutdown")
        for call_id, died_at in list(self._orphans.items()):  # nobody will come back for these now
            loop.create_task(self._finalise_unclaimed(call_id, died_at, wait_s=0.0))
        deadline = loop.time() + self._config.call.note_timeout_s + 10.0
        while (self._calls or self._orphans) and loop.time() < deadline:
            await asyncio.sleep(0.2)
        left = len(self._calls) + len(self._orphans)
        if left:
            log.error("shutdown: %d calls still writing their records after the note timeout", left)
        return {"live_at_shutdown": live, "hung_up": len(hung_up), "unfinished": left}

    # ------------------------------------------------------------------------------ actor deaths
    async def _bind_new(
        self, call_id: str, sample_rate: int, attributes: dict[str, str] | None, resume: bool
    ) -> tuple[ActorHandle, Binding]:
        """Bind a warm actor; one that died while it waited in the pool is skipped, not handed out."""
        for _ in range(3):
            actor = await self._take_actor()
            try:
                return actor, await actor.bind.remote(call_id, sample_rate, attributes, resume)
            except RayActorError:
                self._deaths += 1
                log.error("a warm call actor had died; taking another")
        raise RuntimeError("three warm call actors in a row were dead")

    def _watch(self, call_id: str, actor: ActorHandle) -> None:
        task = asyncio.get_running_loop().create_task(self._watch_actor(call_id, actor))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch_actor(self, call_id: str, actor: ActorHandle) -> None:
        """Ray fails this long call when the actor's process dies: that is how a death is noticed."""
        while True:
            try:
                if await actor.wait_ended.remote(3600.0):
                    return
            except RayActorError:
                self._on_death(call_id, actor)
                return

    def _on_death(self, call_id: str, actor: ActorHandle) -> None:
        if self._calls.get(call_id) is not actor:
            return  # released already (a finished call's actor is killed on purpose), or replaced
        del self._calls[call_id]
        self._deaths += 1
        self._orphans[call_id] = time.monotonic()
        log.error("call %s: its call actor died; the call can resume for %.0f s",
                  call_id, self._config.call.reconnect_grace_s)
        asyncio.get_running_loop().create_task(self._finalise_unclaimed(call_id, self._orphans[call_id]))

    async def _finalise_unclaimed(self, call_id: str, died_at: float, wait_s: float | None = None) -> None:
        """Nobody resumed the call in time: resume it here and hang it up, so its note is written."""
        await asyncio.sleep(self._config.call.reconnect_grace_s if wait_s is None else wait_s)
        if self._orphans.get(call_id) != died_at:
            return  # resumed by a reconnecting gateway
        del self._orphans[call_id]
        sample_rate, attributes = self._meta.get(call_id, (8000, {}))
        try:
            actor, _ = await self._bind_new(call_id, sample_rate, attributes, resume=True)
        except Exception as error:  # noqa: BLE001 - the checkpointed state stays in storage
            log.error("call %s: could not finalise the orphaned call: %s", call_id, type(error).__name__)
            return
        self._calls[call_id] = actor
        self._resumed += 1
        self._watch(call_id, actor)
        await actor.hangup.remote("call_actor_lost")

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
            # Its resources (placement.call_actor) are what put calls on call workers and scale them.
            actor = CallActor.options(**self._call_actor_options).remote(self._config)
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
