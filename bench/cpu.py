"""Bench 6: where a call's CPU goes, thread by thread, beside what the same work costs outside Ray.

Bench 2 says how many calls fit; this says why. With echo-test calls flowing (stand-in engines,
`call.loopback`), it reads every thread's CPU time from /proc over one window:

* each call actor process, split into Ray's main thread (the core worker's task loop, which a
  hard-coded 10 ms `CoreWorker.CheckSignal` timer wakes 100 times a second to take the GIL), the
  actor's asyncio thread (where the gateway's exchanges are served) and Ray's IO threads;
* the warm (unbound) call actors, i.e. the per-process floor alone;
* the gateway process.

And two references measured in the same run, without Ray: the same stream server and exchange
(actors/stream_server.py, gateway/links.py) with one plain Python process per call, and with every
call in one process. Their difference is what a process per call costs by itself.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from actors.outbound import ExchangeResult, OutboundItem
from actors.stream_server import StreamServer
from bench.caller import LoadCaller
from bench.overhead import loopback_overrides
from bench.procs import cpu_seconds, descendants, title
from bench.report import console, plot_path, save, table
from bench.server import start_server
from gateway.links import StreamLink

CALLS = 50
QUICK_CALLS = 10
POOL = 10
WINDOW_S = 10.0
EXCHANGE_S = 0.04  # server.relay_interval_ms: 25 exchanges per call per second
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of one process, by thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _thread_role(pid: int, tid: int) -> str:
    if tid == pid:
        return "ray_main"
    try:
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "other"
    # Ray renames the process (and so the main thread) to ray::CallActor; the asyncio thread it starts
    # for an async actor kept the worker's earlier title, ray::IDLE.
    return "actor_asyncio" if name.startswith("ray::") else "ray_io"


async def _ray_breakdown(calls: int) -> dict[str, Any]:
    server = start_server(loopback_overrides("stream"), pool_size=POOL)
    try:
        await server.wait_pool()
        caller = LoadCaller(lambda i: f"{server.url}/connect/cpu-{i}")
        try:
            await caller.add_calls(calls)
            await caller.wait_flowing(120)
            await server.wait_pool()
            await asyncio.sleep(3)
            actors = [p for p in descendants(server.process.pid) if title(p).startswith("ray::CallActor")]
            gateway = server.process.pid
            before = {p: thread_cpu(p) for p in [*actors, gateway]}
            started = time.monotonic()
            await asyncio.sleep(WINDOW_S)
            seconds = time.monotonic() - started
            after = {p: thread_cpu(p) for p in [*actors, gateway]}
            roles_of = {p: {tid: _thread_role(p, tid) for tid in after[p]} for p in actors}  # while they run
            stats = caller.window(started, started + seconds)
        finally:
            await caller.close()
    finally:
        server.stop()

    per_actor: list[dict[str, float]] = []
    for pid in actors:
        roles: dict[str, float] = defaultdict(float)
        for tid, cpu in after[pid].items():
            roles[roles_of[pid][tid]] += (cpu - before[pid].get(tid, 0.0)) * 1000 / seconds
        per_actor.append(dict(roles))
    # The bound actors are the busy ones: they serve an exchange 25 times a second, the warm ones never.
    per_actor.sort(key=lambda r: -sum(r.values()))
    bound, warm = per_actor[:calls], per_actor[calls:]

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return round(sum(r.get(key, 0.0) for r in rows) / len(rows), 2) if rows else 0.0

    gateway_ms = sum(after[gateway].get(t, 0) - before[gateway].get(t, 0) for t in after[gateway]) * 1000 / seconds
    return {
        "calls": calls,
        "window_s": round(seconds, 1),
        "p99_ms": stats.p99_ms,
        "frames_lost": stats.frames_lost,
        "bound_actor_ms_per_s": {k: mean(bound, k) for k in ("ray_main", "actor_asyncio", "ray_io")},
        "warm_actor_ms_per_s": {k: mean(warm, k) for k in ("ray_main", "actor_asyncio", "ray_io")},
        "gateway_ms_per_s_per_call": round(gateway_ms / calls, 2),
    }


# ------------------------------------------------------------------------------ the no-Ray references
class _Echo:
    async def exchange(self, first_seq: int, pcm: bytes) -> ExchangeResult:
        count = len(pcm) // FRAME_BYTES
        items = [OutboundItem("audio", pcm[i * FRAME_BYTES:(i + 1) * FRAME_BYTES]) for i in range(count)]
        return ExchangeResult(items, first_seq + count)

    def stream_lost(self) -> None:
        return None


def _serve_streams(count: int, queue: Any) -> None:
    async def main() -> None:
        servers = [StreamServer(_Echo()) for _ in range(count)]
        for server in servers:
            await server.start()
        queue.put([(server.address, server.token) for server in servers])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _drive(addresses: list[tuple[tuple[str, int], bytes]], pids: list[int]) -> float:
    """25 exchanges a second on every stream (2 frames each, as the relay sends); CPU ms/s per stream."""
    links = [await StreamLink.connect(address, token) for address, token in addresses]
    pcm = bytes(2 * FRAME_BYTES)

    async def run(link: StreamLink) -> None:
        next_at, seq = time.monotonic(), 0
        while True:
            await link.exchange(seq, pcm)
            seq += 2
            next_at += EXCHANGE_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    tasks = [asyncio.create_task(run(link)) for link in links]
    try:
        await asyncio.sleep(2)
        cpu0 = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(WINDOW_S)
        cpu1 = sum(cpu_seconds(p) for p in pids)
    finally:
        for task in tasks:
            task.cancel()
        for link in links:
            await link.close()
    return (cpu1 - cpu0) * 1000 / WINDOW_S / len(links)


def _plain_process(calls: int, per_process: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    processes = [ctx.Process(target=_serve_streams, args=(per_process, queue), daemon=True)
                 for _ in range(calls // per_process)]
    for process in processes:
        process.start()
    try:
        addresses = [address for _ in processes for address in queue.get(timeout=60)]
        return round(asyncio.run(_drive(addresses, [p.pid for p in processes if p.pid])), 2)
    finally:
        for process in processes:
            process.kill()
            process.join()


def run(quick: bool = False) -> dict[str, Any]:
    calls = QUICK_CALLS if quick else CALLS
    with console.status(f"bench 6: CPU per thread with {calls} echo-test calls"):
        ray_figures = asyncio.run(_ray_breakdown(calls))
    with console.status("bench 6: the same exchanges in plain processes (no Ray)"):
        one_each = _plain_process(calls, 1)
        shared = _plain_process(calls, calls)
    bound, warm = ray_figures["bound_actor_ms_per_s"], ray_figures["warm_actor_ms_per_s"]
    figures = {
        **ray_figures,
        "plain_process_per_call_ms_per_s": one_each,
        "plain_all_calls_in_one_process_ms_per_s": shared,
        "exchanges_per_call_per_s": round(1 / EXCHANGE_S),
    }
    rows = [
        {"where": "call actor: Ray main thread (10 ms timer)", "bound": bound["ray_main"], "warm": warm["ray_main"]},
        {"where": "call actor: asyncio thread (exchanges)", "bound": bound["actor_asyncio"], "warm": warm["actor_asyncio"]},
        {"where": "call actor: Ray IO threads", "bound": bound["ray_io"], "warm": warm["ray_io"]},
        {"where": "gateway (per call)", "bound": ray_figures["gateway_ms_per_s_per_call"], "warm": None},
        {"where": "no Ray: one process per call (exchanges)", "bound": one_each, "warm": None},
        {"where": "no Ray: all calls in one process", "bound": shared, "warm": None},
    ]
    table(f"bench 6 — CPU ms per second per call, {calls} echo-test calls", rows, ["where", "bound", "warm"])
    total = sum(bound.values()) + ray_figures["gateway_ms_per_s_per_call"]
    console.print(f"a call costs ~{total:.1f} ms of CPU per second (call actor + gateway); 2 cores hold at most "
                  f"~{2000 / total:.0f} such calls before the caller, Ray's own processes and the warm pool")
    figures["total_ms_per_s_per_call"] = round(total, 2)
    _plot(figures)
    save("cpu", figures)
    return figures


def _plot(figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bound = figures["bound_actor_ms_per_s"]
    parts = [("Ray main thread (timer)", bound["ray_main"]), ("actor asyncio (exchanges)", bound["actor_asyncio"]),
             ("Ray IO threads", bound["ray_io"]), ("gateway", figures["gateway_ms_per_s_per_call"])]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    left = 0.0
    for label, value in parts:
        ax.barh(["IasoVoice call\n(Ray actor)"], [value], left=left, label=f"{label}: {value:.1f}")
        left += value
    ax.barh(["no Ray,\nprocess per call"], [figures["plain_process_per_call_ms_per_s"]], color="gray")
    ax.barh(["no Ray,\none process"], [figures["plain_all_calls_in_one_process_ms_per_s"]], color="silver")
    ax.set_xlabel("CPU ms per second per call (25 exchanges/s)")
    ax.set_title(f"Bench 6: where a call's CPU goes ({figures['calls']} echo-test calls)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(plot_path("cpu"))
    plt.close(fig)
