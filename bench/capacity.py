"""Bench 2: the most concurrent calls one node sustains: no lost frame, audio added latency p99 <= 100 ms.

Echo-test calls (stand-in engines, `call.loopback: true`) over the configured default transport are
added in steps; each step is measured once its calls are flowing and the warm pool has refilled. The
ramp stops at the first step that loses a frame or goes over the latency budget, or at the bounds
(call count, wall time, free memory): the figure is the last step that passed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.caller import LoadCaller
from bench.overhead import COLUMNS, loopback_overrides
from bench.procs import mem_available_kb
from bench.ramp import RampSettings, ramp
from bench.report import console, plot_path, save, table
from bench.server import start_server
from iasovoice.config import load_config

STEP = 25
MAX_CALLS = 300
QUICK_MAX_CALLS = 50
P99_BUDGET_MS = 100.0
MIN_FREE_MB = 3000  # stop before the node (shared with others) runs short of memory


def passed(result: dict[str, Any]) -> bool:
    return result["frames_lost"] == 0 and result["p99_ms"] is not None and result["p99_ms"] <= P99_BUDGET_MS \
        and result["calls"] >= result["target_calls"]


def run(quick: bool = False) -> dict[str, Any]:
    transport = load_config().server.transport
    top = QUICK_MAX_CALLS if quick else MAX_CALLS
    settings = RampSettings(list(range(STEP, top + 1, STEP)), settle_s=2.0, window_s=4.0 if quick else 6.0,
                            max_seconds=900.0)

    def stop(result: dict[str, Any]) -> bool:
        return not passed(result) or mem_available_kb() / 1024 < MIN_FREE_MB

    with console.status(f"bench 2: ramping echo-test calls by {STEP} (transport={transport})"):
        server = start_server(loopback_overrides(transport), pool_size=STEP)
        try:
            async def go() -> list[dict[str, Any]]:
                caller = LoadCaller(lambda i: f"{server.url}/connect/cap-{i}")
                try:
                    return await ramp(caller, settings, server.process.pid, stop=stop,
                                      on_level=lambda r: console.print(f"  {r['calls']} calls: lost {r['frames_lost']}, "
                                                                      f"p99 {r['p99_ms']} ms, server {r['server_cores']} cores"),
                                      before_step=server.wait_pool)
                finally:
                    await caller.close()

            steps = asyncio.run(go())
        finally:
            server.stop()
    good = [r for r in steps if passed(r)]
    sustained = good[-1]["calls"] if good else 0
    figures = {"transport": transport, "criteria": {"lost_frames": 0, "p99_ms_max": P99_BUDGET_MS},
               "step": STEP, "steps": steps, "sustained_calls": sustained, "target_calls": 200}
    table(f"bench 2 — ramp (transport={transport})", steps, COLUMNS)
    console.print(f"[bold]sustained: {sustained} concurrent calls[/bold] (target 200"
                  + ("" if sustained >= 200 else f", missed by {200 - sustained}") + ")")
    _plot(figures)
    save("capacity", figures)
    return figures


def _plot(figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in figures["steps"] if s["p99_ms"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    ax.plot([s["calls"] for s in steps], [s["p99_ms"] for s in steps], "-o", label="p99 frame round trip")
    ax.axhline(P99_BUDGET_MS, color="r", ls="--", label="budget 100 ms")
    ax2 = ax.twinx()
    ax2.plot([s["calls"] for s in steps], [s["server_cores"] for s in steps], "-s", color="gray", label="server cores")
    ax2.set_ylabel("server CPU (cores)")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(f"Bench 2: capacity ({figures['transport']}): {figures['sustained_calls']} calls sustained")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(plot_path("capacity"))
    plt.close(fig)
