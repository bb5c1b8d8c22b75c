"""Bench 1: framework overhead per 20 ms frame, gateway → call actor → back, against the echo floor.

Every call is an echo test (`call.loopback: true`) with stand-in engines, so what a frame's round trip
costs is the platform alone: websocket, the gateway's relay (frames wait up to one `relay_interval_ms`
for the next exchange), the hop to the call actor and back. Both transports (`server.transport: ray` and
`stream`) are measured, each beside a plain `websockets` echo server driven by the same caller in the
same run: the floor. Overhead is reported as milliseconds and as a ratio to that floor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.caller import LoadCaller
from bench.echo_server import start_echo, stop_echo
from bench.ramp import RampSettings, ramp
from bench.report import console, plot_path, save, table
from bench.server import STANDIN, BenchServer, free_port, start_server

LEVELS = [1, 50, 100, 200]
QUICK_LEVELS = [1, 20]
COLUMNS = ["target_calls", "calls", "frames_sent", "frames_lost", "p50_ms", "p99_ms", "max_ms", "server_cores",
           "client_cores"]


POOL = 50  # the largest step: each step's calls bind from a full warm pool, not by cold starts


def loopback_overrides(transport: str, extra: list[str] | None = None) -> list[str]:
    return [*STANDIN, "vad.engine=energy", "call.loopback=true", f"server.transport={transport}",
            "call.idle_hangup_s=60", *(extra or [])]


async def _measure(
    url: str, settings: RampSettings, pid: int | None, label: str, server: BenchServer | None = None
) -> list[dict[str, Any]]:
    caller = LoadCaller(lambda i: f"{url}/connect/bench-{label}-{i}")
    try:
        return await ramp(
            caller, settings, pid, on_level=lambda r: console.print(f"  {label}: {_line(r)}"),
            before_step=server.wait_pool if server is not None else None, stop=overloaded,
        )
    finally:
        await caller.close()


def overloaded(result: dict[str, Any]) -> bool:
    """Far past saturation (a second of delay or 1 % of frames lost): higher levels would only take long."""
    return (result["p99_ms"] or 0) > 1000 or result["frames_lost"] > 0.01 * max(1, result["frames_sent"])


def _line(result: dict[str, Any]) -> str:
    p50, p99 = result["p50_ms"], result["p99_ms"]
    return (f"{result['calls']} calls, {result['frames_sent']} frames, lost {result['frames_lost']}, "
            f"p50 {p50 if p50 is None else round(p50, 1)} ms, p99 {p99 if p99 is None else round(p99, 1)} ms, "
            f"server {result['server_cores']} cores")


def measure_floor(settings: RampSettings) -> list[dict[str, Any]]:
    port = free_port()
    echo = start_echo(port)
    try:
        return asyncio.run(_measure(f"ws://127.0.0.1:{port}", settings, echo.pid, "floor"))
    finally:
        stop_echo(echo)


def measure_transport(transport: str, settings: RampSettings, extra: list[str] | None = None) -> list[dict[str, Any]]:
    server = start_server(loopback_overrides(transport, extra), pool_size=POOL)
    try:
        return asyncio.run(_measure(server.url, settings, server.process.pid, transport, server))
    finally:
        server.stop()


def run(quick: bool = False) -> dict[str, Any]:
    settings = RampSettings(QUICK_LEVELS if quick else LEVELS, settle_s=3.0, window_s=3.0 if quick else 8.0)
    results: dict[str, Any] = {"levels": settings.levels, "window_s": settings.window_s, "relay_interval_ms": 40}
    with console.status("bench 1: echo floor (plain websockets)"):
        results["floor"] = measure_floor(settings)
    for transport in ("ray", "stream"):
        with console.status(f"bench 1: loopback through the call actor, transport={transport}"):
            results[transport] = measure_transport(transport, settings)
    summary = []
    for index, level in enumerate(settings.levels):
        row: dict[str, Any] = {"calls": level}
        floor = results["floor"][index] if index < len(results["floor"]) else {}
        row["floor_p50_ms"], row["floor_p99_ms"] = floor.get("p50_ms"), floor.get("p99_ms")
        for transport in ("ray", "stream"):
            r = results[transport][index] if index < len(results[transport]) else {}
            row[f"{transport}_p50_ms"], row[f"{transport}_p99_ms"] = r.get("p50_ms"), r.get("p99_ms")
            row[f"{transport}_lost"] = r.get("frames_lost")
            if r.get("p50_ms") and floor.get("p50_ms"):
                row[f"{transport}_p50_ratio"] = r["p50_ms"] / floor["p50_ms"]
                row[f"{transport}_p99_ratio"] = r["p99_ms"] / floor["p99_ms"]
        summary.append(row)
    results["summary"] = summary
    for name in ("floor", "ray", "stream"):
        table(f"bench 1 — {name}", results[name], COLUMNS)
    table("bench 1 — per-frame round trip vs the echo floor", summary, list(summary[0].keys()))
    _plot(results)
    save("overhead", results)
    return results


def _plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    for name, style in (("floor", "k"), ("ray", "tab:red"), ("stream", "tab:blue")):
        rows = [r for r in results[name] if r["p99_ms"] is not None]
        calls = [r["calls"] for r in rows]
        ax.plot(calls, [r["p50_ms"] for r in rows], "--o", color=style, label=f"{name} p50")
        ax.plot(calls, [r["p99_ms"] for r in rows], "-o", color=style, label=f"{name} p99")
    ax.set_xlabel("concurrent calls (echo test, stand-in engines)")
    ax.set_ylabel("per-frame round trip (ms)")
    ax.set_yscale("log")
    ax.set_title("Bench 1: frame round trip through the call actor")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(plot_path("overhead"))
    plt.close(fig)
