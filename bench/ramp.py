"""Step a `LoadCaller` through call counts and measure one window at each: the core of benches 1 and 2.

At each level the new calls are connected, left to settle (actor cold starts, first exchanges), then
one window of frames is measured and read after a drain, so a frame still in flight at the window's
end is not miscounted as lost. CPU use of the serving processes over the window is reported beside
the latency, since on 2 cores CPU is what runs out first.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.caller import LoadCaller
from bench.procs import cpu_seconds, descendants

DRAIN_S = 1.5


@dataclass
class RampSettings:
    levels: list[int]
    settle_s: float = 3.0
    flow_timeout_s: float = 120.0  # cold-starting call actors for a step of 50 calls takes tens of seconds
    window_s: float = 8.0
    max_seconds: float = 600.0


def tree_cpu(root_pid: int | None) -> float:
    if root_pid is None:
        return 0.0
    return sum(cpu_seconds(pid) for pid in [root_pid, *descendants(root_pid)])


async def ramp(
    caller: LoadCaller,
    settings: RampSettings,
    server_pid: int | None,
    on_level: Callable[[dict], None] | None = None,
    stop: Callable[[dict], bool] | None = None,
    before_step: Callable[[], Awaitable[None]] | None = None,
) -> list[dict]:
    """Measure each level in turn; stop early when `stop(level_result)` says so or time runs out."""
    results: list[dict] = []
    started = time.monotonic()
    for level in settings.levels:
        if time.monotonic() - started > settings.max_seconds:
            break
        if before_step is not None:
            await before_step()  # e.g. let the warm pool refill, so a step measures calls, not cold starts
        connect_started = time.monotonic()
        await caller.add_calls(level - len(caller.calls))
        await caller.wait_flowing(settings.flow_timeout_s)
        connect_s = time.monotonic() - connect_started
        if before_step is not None:
            await before_step()  # and let the pool's refill finish, so no process start lands in the window
        await asyncio.sleep(settings.settle_s)
        cpu0, own0, t0 = tree_cpu(server_pid), cpu_seconds(os.getpid()), time.monotonic()
        await asyncio.sleep(settings.window_s)
        cpu1, own1, t1 = tree_cpu(server_pid), cpu_seconds(os.getpid()), time.monotonic()
        await asyncio.sleep(DRAIN_S)
        stats = caller.window(t0, t1)
        result = {
            "target_calls": level,
            **stats.as_dict(),
            "connect_failures": caller.connect_failures,
            "connect_s": round(connect_s, 2),
            "server_cores": round((cpu1 - cpu0) / (t1 - t0), 2),
            "client_cores": round((own1 - own0) / (t1 - t0), 2),
            "load_avg_1m": os.getloadavg()[0],
        }
        results.append(result)
        if on_level is not None:
            on_level(result)
        if stop is not None and stop(result):
            break
    return results
