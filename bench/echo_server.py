"""The floor: a plain `websockets` echo server, measured by the same caller in the same run.

It sends every message straight back and does nothing else, so what the caller measures against it is
the cost of the caller, the kernel's loopback and the websockets library: everything IasoVoice adds is
the difference. Runs in its own process (like the gateway) so the two do not share a CPU core's loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys

import websockets
from websockets.asyncio.server import ServerConnection, serve


async def _echo(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def _main(port: int, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    async with serve(_echo, "127.0.0.1", port, max_size=None, compression=None, ping_interval=None):
        ready.set()
        await asyncio.Future()


def _run(port: int, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    asyncio.run(_main(port, ready))


def start_echo(port: int) -> mp.Process:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    process = ctx.Process(target=_run, args=(port, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        process.kill()
        raise RuntimeError("echo server did not start")
    return process


def stop_echo(process: mp.Process) -> None:
    process.terminate()
    process.join(10)
    if process.is_alive():
        process.kill()
        process.join()


if __name__ == "__main__":  # python -m bench.echo_server PORT: run it by hand
    _run(int(sys.argv[1]), mp.get_context("spawn").Event())
